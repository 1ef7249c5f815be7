// `mway keys secure-boot` (keys/secure-boot-keys.ts): RSA-2048 X.509 keys that openssl reads as
// the names say, and never an overwrite — firmware that enrolled the old db certificate would
// refuse every stage 1 signed with a new one, so a second run refuses before writing anything.
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/exec.ts';
import { cli, tempDir } from '../helpers.ts';

test('mway keys secure-boot makes user PK/KEK/db and the vendor kexec key; a second run is E_KEY_EXISTS and changes nothing', async (t) => {
  const dir = join(await tempDir(t, 'mway-sbkeys-'), 'keys');
  const user = await cli('mway', ['keys', 'secure-boot', '--kind', 'user', '--name', 'ACME', '--out', dir]);
  t.is(user.exitCode, 0, user.stderr);
  const vendor = await cli('mway', [
    'keys',
    'secure-boot',
    '--kind',
    'vendor',
    '--name',
    'ACME-vendor',
    '--out',
    dir,
  ]);
  t.is(vendor.exitCode, 0, vendor.stderr);
  for (const [role, cn] of [
    ['pk', 'ACME Secure Boot PK'],
    ['kek', 'ACME Secure Boot KEK'],
    ['db', 'ACME Secure Boot DB'],
    ['kexec', 'ACME-vendor Secure Boot kexec'],
  ] as const) {
    const x = await run(
      'openssl',
      ['x509', '-in', join(dir, `secure-boot-${role}.crt`), '-noout', '-subject', '-text'],
      {
        timeout: 30_000,
      },
    );
    t.regex(x.stdout, new RegExp(`subject=CN ?= ?${cn}`));
    t.regex(x.stdout, /Public-Key: \(2048 bit\)/);
    const k = await run('openssl', ['rsa', '-in', join(dir, `secure-boot-${role}.key`), '-noout', '-check'], {
      timeout: 30_000,
    });
    t.regex(k.stdout, /RSA key ok/);
  }
  const before = new Map<string, Buffer>();
  for (const f of await readdir(dir)) before.set(f, await readFile(join(dir, f)));
  for (const [kind, name] of [
    ['user', 'Other'],
    ['vendor', 'Other'],
  ] as const) {
    const again = await cli('mway', ['keys', 'secure-boot', '--kind', kind, '--name', name, '--out', dir]);
    t.is(again.exitCode, 1, again.stderr);
    t.regex(again.stderr, /E_KEY_EXISTS: .*secure-boot-(pk|kexec)\.key.* already there/);
  }
  t.deepEqual((await readdir(dir)).sort(), [...before.keys()].sort());
  for (const [f, b] of before) t.true(b.equals(await readFile(join(dir, f))), f);
});
