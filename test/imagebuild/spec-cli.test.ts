// `mway-image spec validate FILE` and `mway-image build --print-spec`, run as a user does.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { DEFAULT_SPEC, validateImageSpec } from '../../imagebuild/image-spec.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { publishedValidator } from '../schema-fixture.ts';

test('mway-image spec validate accepts examples/default and says so (text and --json)', async (t) => {
  const r = await cli('mway-image', ['spec', 'validate', DEFAULT_SPEC]);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /a valid image spec \(milkyway 1\.0\.0\)/);
  const j = await cli('mway-image', ['spec', 'validate', DEFAULT_SPEC, '--json']);
  t.deepEqual(jsonOut(j.stdout), { file: DEFAULT_SPEC, name: 'milkyway', version: '1.0.0' });
});

test('mway-image spec validate names the key path of a bad spec, exit 1, one JSON failure shape', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'image.json');
  await writeFile(file, JSON.stringify({ name: 'web', version: '1', partitions: { data: 'x' } }));
  const r = await cli('mway-image', ['spec', 'validate', file]);
  t.is(r.exitCode, 1);
  t.regex(
    r.stderr,
    /E_SPEC_INVALID: Cannot read image spec .*image\.json: partitions\.data: expected a whole number/,
  );
  const j = await cli('mway-image', ['spec', 'validate', file, '--json']);
  t.is(j.exitCode, 1);
  const out = jsonOut(j.stdout) as { ok: boolean; error: { code: string; details: { field: string } } };
  t.false(out.ok);
  t.is(out.error.code, 'E_SPEC_INVALID');
  t.is(out.error.details.field, 'partitions.data');
  await writeFile(file, '{"name": ');
  const n = await cli('mway-image', ['spec', 'validate', file]);
  t.is(n.exitCode, 1);
  t.regex(n.stderr, /E_SPEC_INVALID: .*not JSON/);
});

test('mway-image spec validate and build refuse unknown flags and a missing file as usage errors', async (t) => {
  const r = await cli('mway-image', ['spec', 'validate', DEFAULT_SPEC, '--frobnicate']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /E_USAGE: Unknown flag --frobnicate/);
  const b = await cli('mway-image', ['build', '--print-spec', '--frobnicate']);
  t.is(b.exitCode, 2);
  const o = await cli('mway-image', ['build', DEFAULT_SPEC]);
  t.is(o.exitCode, 2);
  t.regex(o.stderr, /--out/);
  const m = await cli('mway-image', ['spec', 'validate', '/nonexistent/image.json']);
  t.is(m.exitCode, 1);
  t.regex(m.stderr, /E_SPEC_READ/);
});

test('mway-image build to an output folder that cannot be made is E_FILE_WRITE naming it, exit 1', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  const r = await cli('mway-image', ['build', DEFAULT_SPEC, '-o', join(file, 'out'), '--json']);
  t.is(r.exitCode, 1, r.stderr);
  const { error } = jsonOut(r.stdout) as { error: { code: string; message: string } };
  t.is(error.code, 'E_FILE_WRITE');
  t.is(
    error.message,
    `Cannot create output folder ${join(file, 'out')}: a part of the path is a file, not a directory`,
  );
});

test('mway-image build --print-spec prints the resolved spec, itself a valid spec that resolves the same', async (t) => {
  const r = await cli('mway-image', ['build', '--print-spec', DEFAULT_SPEC]);
  t.is(r.exitCode, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as Record<string, unknown>;
  const { source: _, ...want } = validateImageSpec(JSON.parse(JSON.stringify(printed)), {
    source: DEFAULT_SPEC,
  });
  t.deepEqual(printed, JSON.parse(JSON.stringify(want)));
  t.is((printed.partitions as { esp: number }).esp, 64);
  t.deepEqual(printed.keys, { dir: 'keys', generate: true });
  t.true(publishedValidator('image-spec')(printed), 'doc/image-spec.schema.json (Ajv) accepts it');
});
