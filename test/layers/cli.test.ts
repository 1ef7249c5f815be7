import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { pki } from './fixture.ts';

test('mway-layer init → pack → verify → sign → inspect → extract, with --json and exit codes', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = join(dir, 'demo');
  let r = await cli('mway-layer', ['init', 'demo', src, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  await writeFile(join(src, 'rootfs/hello.txt'), 'hello\n');
  const out = join(dir, 'demo.mwl');
  r = await cli('mway-layer', [
    'pack',
    src,
    '--key',
    p.vendor.keyPath,
    '--cert',
    p.vendor.certPath,
    '-o',
    out,
    '--json',
    '--source-date-epoch',
    '1700000000',
  ]);
  t.is(r.exitCode, 0, r.stderr);
  const packed = jsonOut(r.stdout) as { rootHash: string; payloadOffset: number };
  t.regex(packed.rootHash, /^[0-9a-f]{64}$/);
  t.is(packed.payloadOffset % 4096, 0);

  r = await cli('mway-layer', ['verify', out, '--trust', p.vendorRoot.certPath, '--json']);
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  t.like(jsonOut(r.stdout), { name: 'demo', rootHash: packed.rootHash });

  // Wrong anchor: exit 1 naming the failing check.
  r = await cli('mway-layer', ['verify', out, '--trust', p.userRoot.certPath, '--json']);
  t.is(r.exitCode, 1);
  t.like(jsonOut(r.stdout), { ok: false, error: { code: 'E_CERT_UNTRUSTED' } });

  // Operator may not sign layers (keys/ role table).
  r = await cli('mway-layer', ['sign', out, '--key', p.operator.keyPath, '--cert', p.operator.certPath]);
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /E_ROLE_MAY_NOT_SIGN/);

  r = await cli('mway-layer', ['sign', out, '--key', p.user.keyPath, '--cert', p.user.certPath, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.like(jsonOut(r.stdout), { signatures: 2 });

  r = await cli('mway-layer', ['inspect', out, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const info = jsonOut(r.stdout) as {
    manifest: { name: string };
    signers: { role: string }[];
    files: { path: string }[];
    members: { name: string }[];
  };
  t.is(info.manifest.name, 'demo');
  t.deepEqual(
    info.signers.map((s) => s.role),
    ['vendor', 'user'],
  );
  t.true(info.files.some((f) => f.path === '/hello.txt'));
  t.deepEqual(
    info.members.map((m) => m.name),
    ['layer.json', 'payload.erofs', 'payload.verity', 'signature.1.json', 'signature.2.json'],
  );

  const x = join(dir, 'x');
  r = await cli('mway-layer', [
    'extract',
    out,
    x,
    '--trust',
    p.vendorRoot.certPath,
    '--trust',
    p.userRoot.certPath,
  ]);
  t.is(r.exitCode, 0, r.stderr);
  t.is(await readFile(join(x, 'hello.txt'), 'utf8'), 'hello\n');

  // Usage error: exit 2.
  r = await cli('mway-layer', ['verify', out]);
  t.is(r.exitCode, 2);
});
