import test from 'ava';
import { execa } from 'execa';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  extractFiles,
  extractPayload,
  packLayer,
  readLayer,
  signLayer,
  verifyLayer,
} from '../../layers/index.ts';
import { tempDir } from '../helpers.ts';
import { layerSource, pki } from './fixture.ts';

test('pack → verify: offsets point at the payload and hash tree; veritysetup agrees', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'), { policy: true });
  const out = join(dir, 'hello.mwl');
  const r = await packLayer({
    dir: src,
    key: p.vendor.key,
    chain: p.vendor.chain,
    out,
    sourceDateEpoch: 1_700_000_000,
  });
  t.is(r.payloadOffset % 4096, 0);
  const v = await verifyLayer(out, { anchors: [p.vendorRoot.cert] });
  t.is(v.manifest.name, 'hello');
  t.is(v.signers[0]?.fingerprint, p.vendor.cert.fingerprint);
  t.is(v.payloadOffset, r.payloadOffset);
  t.is(v.verityOffset % 512, 0);
  t.truthy(v.manifest.policy);
  // The members' bytes at the offsets are what veritysetup verifies with the signed root.
  await extractPayload(out, join(dir, 'p.erofs'));
  const file = await readFile(out);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'p.verity'), file.subarray(v.verityOffset, v.verityOffset + v.veritySize));
  t.deepEqual(
    await readFile(join(dir, 'p.erofs')),
    file.subarray(v.payloadOffset, v.payloadOffset + v.payloadSize),
  );
  const vs = await execa(
    'veritysetup',
    ['verify', join(dir, 'p.erofs'), join(dir, 'p.verity'), v.manifest.payload.verity.rootHash],
    { reject: false },
  );
  t.is(vs.exitCode, 0, vs.stderr);
  // GNU tar reads the .mwl and lists the members in order.
  const list = await execa('tar', ['-tf', out]);
  t.deepEqual(list.stdout.split('\n'), [
    'layer.json',
    'payload.erofs',
    'payload.verity',
    'policy.cil',
    'signature.1.json',
  ]);
});

test('pack is deterministic: same input, same file', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const a = await layerSource(join(dir, 'a'));
  const b = await layerSource(join(dir, 'b'));
  await packLayer({
    dir: a,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'a.mwl'),
    sourceDateEpoch: 1_700_000_000,
  });
  await new Promise((r) => setTimeout(r, 1100)); // different mtimes on disk must not matter
  await packLayer({
    dir: b,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'b.mwl'),
    sourceDateEpoch: 1_700_000_000,
  });
  t.deepEqual(await readFile(join(dir, 'a.mwl')), await readFile(join(dir, 'b.mwl')));
  // The copying writer (file systems without fallocate --insert-range) gives the same bytes.
  await packLayer({
    dir: b,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'c.mwl'),
    sourceDateEpoch: 1_700_000_000,
    inPlace: false,
  });
  t.deepEqual(await readFile(join(dir, 'c.mwl')), await readFile(join(dir, 'a.mwl')));
});

test('countersign: vendor layer signed by the user verifies against both anchors only', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const out = join(dir, 'l.mwl');
  const r = await packLayer({
    dir: await layerSource(join(dir, 's')),
    key: p.vendor.key,
    chain: p.vendor.chain,
    out,
    sourceDateEpoch: 1,
  });
  await signLayer(out, { key: p.user.key, chain: p.user.chain });
  const l = await readLayer(out);
  t.is(l.signatures.length, 2);
  t.is(l.payloadOffset, r.payloadOffset);
  const v = await verifyLayer(out, { anchors: [p.vendorRoot.cert, p.userRoot.cert] });
  t.deepEqual(
    v.signers.map((s) => s.role),
    ['vendor', 'user'],
  );
  const e = await t.throwsAsync(verifyLayer(out, { anchors: [p.vendorRoot.cert] }));
  t.is((e as { code?: string }).code, 'E_CERT_UNTRUSTED');
});

test('extract: files come out of the erofs payload without mounting', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const out = join(dir, 'l.mwl');
  await packLayer({
    dir: await layerSource(join(dir, 's')),
    key: p.user.key,
    chain: p.user.chain,
    out,
    sourceDateEpoch: 1,
  });
  const x = join(dir, 'x');
  const counts = await extractFiles(out, x, { anchors: [p.userRoot.cert] });
  t.true(counts.files >= 2);
  t.is(await readFile(join(x, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hello\n');
  t.is((await stat(join(x, 'bin/hello'))).mode & 0o777, 0o755);
  const { readlink } = await import('node:fs/promises');
  t.is(await readlink(join(x, 'etc/hello-link')), '../bin/hello');
});

test('a layer.json with $schema (for the editor) packs; the signed manifest leaves it out', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'));
  const { writeFile } = await import('node:fs/promises');
  const source = JSON.parse(await readFile(join(src, 'layer.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(
    join(src, 'layer.json'),
    JSON.stringify({ $schema: '../doc/layer-source.schema.json', ...source }),
  );
  const out = join(dir, 'hello.mwl');
  await packLayer({
    dir: src,
    key: p.vendor.key,
    chain: p.vendor.chain,
    out,
    sourceDateEpoch: 1_700_000_000,
  });
  const v = await verifyLayer(out, { anchors: [p.vendorRoot.cert] });
  t.is(v.manifest.name, 'hello');
  t.false('$schema' in v.manifest);
});
