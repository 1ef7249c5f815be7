import test from 'ava';
import { execa } from 'execa';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeErofs } from '../../../formats/index.ts';
import { ROOT, tempDir } from '../../helpers.ts';

/** An erofs image of `files`, placed at a 4 KiB-aligned offset after some junk in `out`. */
async function payloadAt(dir: string, name: string, files: Record<string, string>, out: string) {
  const src = join(dir, `src-${name}`);
  for (const [p, text] of Object.entries(files)) {
    await mkdir(join(src, p, '..'), { recursive: true });
    await writeFile(join(src, p), text);
  }
  const img = join(dir, `${name}.erofs`);
  await makeErofs(src, img, { sourceDateEpoch: 1_700_000_000 });
  const bytes = await readFile(img);
  const offset = 8192;
  const fh = await open(out, 'w');
  await fh.write(Buffer.alloc(offset, 0xee), 0, offset, 0);
  await fh.write(bytes, 0, bytes.length, offset);
  await fh.write(Buffer.alloc(4096, 0xee), 0, 4096, offset + bytes.length);
  await fh.close();
  return { offset, size: bytes.length };
}

test('activation: payloads at an offset inside a file mount read-only; the app root overlays app over library over base', async (t) => {
  const dir = await tempDir(t);
  const a = await payloadAt(dir, 'app', { 'etc/who': 'app', 'bin/app': '#!/bin/sh\n' }, join(dir, 'app.mwl'));
  const l = await payloadAt(dir, 'lib', { 'etc/who': 'lib', 'lib/libx': 'from lib' }, join(dir, 'lib.mwl'));
  await mkdir(join(dir, 'base', 'etc'), { recursive: true });
  await writeFile(join(dir, 'base', 'etc', 'who'), 'base');
  await writeFile(join(dir, 'base', 'base-only'), 'from base');
  const r = await execa(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      process.execPath,
      join(ROOT, 'test/agent/layers/activation-child.ts'),
      dir,
      join(dir, 'app.mwl'),
      String(a.offset),
      String(a.size),
      join(dir, 'lib.mwl'),
      String(l.offset),
      String(l.size),
    ],
    { reject: false, timeout: 60_000 },
  );
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  t.is(out.who, 'app'); // the app's file wins over the library's and the base's
  t.is(out.lib, 'from lib');
  t.is(out.base, 'from base');
  t.deepEqual(out.groups, ['shop']);
  t.true(out.readOnly);
  for (const d of ['data', 'proc', 'dev', 'tmp', 'run', 'bin', 'lib', 'etc'])
    t.true((out.top as string[]).includes(d), d);
  // No loop device is left attached to the files.
  const loops = await execa('losetup', ['-j', join(dir, 'app.mwl')]);
  t.is(loops.stdout.trim(), '');
});
