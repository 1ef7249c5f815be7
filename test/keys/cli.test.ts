import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, jsonOut, tempDir } from '../helpers.ts';

test('mway keys: new, show, verify, sign, verify-sig, revoke end to end with exit codes and one-line errors', async (t) => {
  const d = await tempDir(t);
  const ok = async (args: string[]) => {
    const r = await cli('mway', ['keys', ...args]);
    t.is(r.exitCode, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  await ok(['new', '--role', 'user-root', '--name', 'root', '--out', d]);
  const issuer = ['--issuer-key', join(d, 'root.key'), '--issuer-cert', join(d, 'root.crt')];
  const peer = await ok(['new', '--role', 'peer', '--name', 'p1', '--out', d, ...issuer, '--json']);
  t.is(jsonOut(peer.stdout).certificate.role, 'peer');
  t.is((await stat(join(d, 'p1.key'))).mode & 0o777, 0o600);
  t.is((await stat(join(d, 'p1.kem.key'))).mode & 0o777, 0o600);
  await ok([
    'new',
    '--role',
    'operator',
    '--name',
    'op',
    '--out',
    d,
    ...issuer,
    '--groups',
    'web',
    '--actions',
    'restart',
  ]);
  const show = await ok(['show', join(d, 'op.crt'), '--json']);
  t.deepEqual(jsonOut(show.stdout)[0].scope, { groups: ['web'], actions: ['restart'] });
  await ok(['verify', join(d, 'p1.crt'), '--trust', join(d, 'root.crt'), '--role', 'peer']);

  const wrongRole = await cli('mway', [
    'keys',
    'verify',
    join(d, 'p1.crt'),
    '--trust',
    join(d, 'root.crt'),
    '--role',
    'broker',
    '--json',
  ]);
  t.is(wrongRole.exitCode, 1);
  t.is(jsonOut(wrongRole.stdout).error.code, 'E_CERT_ROLE');
  const expired = await cli('mway', [
    'keys',
    'verify',
    join(d, 'p1.crt'),
    '--trust',
    join(d, 'root.crt'),
    '--at',
    '2099-01-01T00:00:00Z',
  ]);
  t.is(expired.exitCode, 1);
  t.regex(expired.stdout, /E_CERT_EXPIRED/);

  const file = join(d, 'data.txt');
  await writeFile(file, 'restart web\n');
  await ok([
    'sign',
    '--key',
    join(d, 'op.key'),
    '--cert',
    join(d, 'op.crt'),
    '--type',
    'command',
    file,
    '-o',
    join(d, 'data.sig'),
  ]);
  await ok(['verify-sig', file, join(d, 'data.sig'), '--trust', join(d, 'root.crt')]);
  const wrongType = await cli('mway', [
    'keys',
    'verify-sig',
    file,
    join(d, 'data.sig'),
    '--trust',
    join(d, 'root.crt'),
    '--type',
    'layer',
  ]);
  t.is(wrongType.exitCode, 1);
  t.regex(wrongType.stdout, /E_ENVELOPE_TYPE/);
  await writeFile(file, 'restart db\n');
  const tampered = await cli('mway', [
    'keys',
    'verify-sig',
    file,
    join(d, 'data.sig'),
    '--trust',
    join(d, 'root.crt'),
  ]);
  t.is(tampered.exitCode, 1);
  t.regex(tampered.stdout, /E_SIG_INVALID/);
  const peerSigns = await cli('mway', [
    'keys',
    'sign',
    '--key',
    join(d, 'p1.key'),
    '--cert',
    join(d, 'p1.crt'),
    '--type',
    'command',
    file,
    '-o',
    join(d, 'x.sig'),
  ]);
  t.not(peerSigns.exitCode, 0);
  t.regex(peerSigns.stderr, /^mway: E_ROLE_MAY_NOT_SIGN: [^\n]+\n?$/);

  await ok(['revoke', ...issuer, '--cert', join(d, 'p1.crt'), '--crl', join(d, 'root.crl')]);
  const revoked = await cli('mway', [
    'keys',
    'verify',
    join(d, 'p1.crt'),
    '--trust',
    join(d, 'root.crt'),
    '--crl',
    join(d, 'root.crl'),
  ]);
  t.is(revoked.exitCode, 1);
  t.regex(revoked.stdout, /E_CERT_REVOKED/);
  // The operator is not revoked by that CRL.
  await ok(['verify', join(d, 'op.crt'), '--trust', join(d, 'root.crt'), '--crl', join(d, 'root.crl')]);
});

test('mway keys: malformed input, unknown algorithm and loose key permissions give one-line coded errors', async (t) => {
  const d = await tempDir(t);
  const bad = join(d, 'bad.crt');
  await writeFile(bad, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const r1 = await cli('mway', ['keys', 'show', bad]);
  t.not(r1.exitCode, 0);
  t.regex(r1.stderr, /^mway: E_CERT_MALFORMED: [^\n]+\n?$/);
  const r2 = await cli('mway', [
    'keys',
    'new',
    '--role',
    'user-root',
    '--name',
    'r',
    '--out',
    d,
    '--alg',
    'rsa-4096',
  ]);
  t.regex(r2.stderr, /^mway: E_ALG_UNKNOWN: [^\n]+\n?$/);
  await cli('mway', ['keys', 'new', '--role', 'user-root', '--name', 'r', '--out', d]);
  const { chmod } = await import('node:fs/promises');
  await chmod(join(d, 'r.key'), 0o644);
  const r3 = await cli('mway', [
    'keys',
    'new',
    '--role',
    'user',
    '--name',
    'u',
    '--out',
    d,
    '--issuer-key',
    join(d, 'r.key'),
    '--issuer-cert',
    join(d, 'r.crt'),
  ]);
  t.regex(r3.stderr, /^mway: E_KEY_PERMISSIONS: [^\n]+\n?$/);
});
