// Every CLI verb that reads a file a user names, given a FIFO, a directory, a character device
// (/dev/null) or random bytes where the file goes (issue 12): each must exit non-zero with a
// code doc/errors-*.md lists — never E_INTERNAL, never a hang (a FIFO with no writer blocks
// a plain read forever) — and leave no output behind. The sweep that found the last ones:
// `mway install FIFO` hung and `mway install DIR` was E_INTERNAL, `mway-image spec validate`
// and `build` hung on a FIFO, `mway-image verity format DIR` was E_INTERNAL.
import test from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { documentedCodes } from './fuzz/_codes.ts';
import { type BINS, cli, tempDir } from './helpers.ts';

type Bin = keyof typeof BINS;

/** `@` is the hostile path. Verbs whose input may legitimately be any bytes skip `junk`. */
const VERBS: [Bin, string[], { anyBytes?: boolean }?][] = [
  ['mway', ['keys', 'show', '@']],
  ['mway', ['keys', 'verify', '@', '--trust', 'k/r.crt']],
  ['mway', ['keys', 'verify', 'k/u.crt', '--trust', '@']],
  ['mway', ['keys', 'verify', 'k/u.crt', '--trust', 'k/r.crt', '--crl', '@']],
  ['mway', ['keys', 'verify-sig', 'data', '@', '--trust', 'k/r.crt']],
  [
    'mway',
    ['keys', 'sign', '@', '--key', 'k/u.key', '--cert', 'k/u.crt', '-o', 'out/x.sig'],
    { anyBytes: true },
  ],
  ['mway', ['keys', 'sign', 'data', '--key', '@', '--cert', 'k/u.crt', '-o', 'out/x.sig']],
  ['mway', ['keys', 'sign', 'data', '--key', 'k/u.key', '--cert', '@', '-o', 'out/x.sig']],
  [
    'mway',
    [
      'keys',
      'revoke',
      '--issuer-key',
      'k/r.key',
      '--issuer-cert',
      'k/r.crt',
      '--cert',
      '@',
      '--crl',
      'out/x.crl',
    ],
  ],
  ['mway', ['keys', 'crl', '--issuer-key', 'k/r.key', '--issuer-cert', 'k/r.crt', '--crl', '@']],
  ['mway', ['install', '@', '--peer', 'p1']],
  ['mway', ['crl', 'push', '@', '--peer', 'p1']],
  ['mway-layer', ['inspect', '@']],
  ['mway-layer', ['verify', '@', '--trust', 'k/r.crt']],
  ['mway-layer', ['extract', '@', 'out/x']],
  ['mway-layer', ['sign', '@', '--key', 'k/u.key', '--cert', 'k/u.crt']],
  ['mway-layer', ['import-oci', '@', '--key', 'k/u.key', '--cert', 'k/u.crt', '-o', 'out/x.mwl']],
  ['mway-image', ['inspect', '@']],
  ['mway-image', ['verify', '@', '--trust', 'k/r.crt']],
  ['mway-image', ['gpt', 'show', '@']],
  ['mway-image', ['verity', 'format', '@', 'out/x.hash']],
  ['mway-image', ['verity', 'verify', '@', 'data', '0'.repeat(64)]],
  ['mway-image', ['verity', 'verify', 'data', '@', '0'.repeat(64)]],
  ['mway-image', ['spec', 'validate', '@']],
  ['mway-image', ['build', '@', '-o', 'out/img']],
];

/** The code a failed run reports: its JSON error, a verdict's code, or a verify's first failed check. */
function codeOf(stdout: string): string | undefined {
  try {
    const j = JSON.parse(stdout) as {
      error?: { code?: string };
      code?: string;
      checks?: { ok: boolean; code?: string }[];
    };
    return j.error?.code ?? j.code ?? j.checks?.find((c) => !c.ok)?.code;
  } catch {
    return undefined;
  }
}

test('every file-reading verb refuses a FIFO, a directory, a device and junk with a documented code, without hanging', async (t) => {
  const d = await tempDir(t);
  const env = { HOME: d, MWAY_CONFIG_DIR: join(d, 'no-config') };
  for (const args of [
    ['keys', 'new', '--role', 'user-root', '--name', 'r', '--out', 'k'],
    [
      'keys',
      'new',
      '--role',
      'user',
      '--name',
      'u',
      '--out',
      'k',
      '--issuer-key',
      'k/r.key',
      '--issuer-cert',
      'k/r.crt',
    ],
  ]) {
    const r = await cli('mway', args, { cwd: d, env });
    t.is(r.exitCode, 0, r.stderr);
  }
  await writeFile(join(d, 'data'), Buffer.alloc(8192, 1));
  await mkdir(join(d, 'adir'));
  await mkdir(join(d, 'out'));
  await execa('mkfifo', [join(d, 'fifo')]);
  await writeFile(join(d, 'junk'), randomBytes(5000));
  const codes = documentedCodes();
  const cases = VERBS.flatMap(([bin, args, o]) =>
    ['fifo', 'adir', '/dev/null', 'junk']
      .filter((x) => !(x === 'junk' && o?.anyBytes === true))
      .map((x) => ({ bin, args: args.map((a) => (a === '@' ? x : a)) })),
  );
  // Two at a time: the machine is shared; each run is a Node start (~0.5 s).
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const { bin, args } = cases[i] as { bin: Bin; args: string[] };
      const what = `${bin} ${args.join(' ')}`;
      const r = await cli(bin, [...args, '--json'], { cwd: d, env, timeout: 60_000 });
      t.not(r.exitCode, 0, `${what}: accepted`);
      t.not(r.exitCode, 70, `${what}: exit 70 (E_INTERNAL): ${r.stdout}`);
      const code = codeOf(r.stdout);
      t.truthy(code, `${what}: no code in ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
      t.not(code, 'E_INTERNAL', what);
      if (code !== undefined) t.true(codes.has(code), `${what}: ${code} is not in doc/errors-*.md`);
    }
  };
  await Promise.all([worker(), worker()]);
  t.deepEqual(await readdir(join(d, 'out')), [], 'nothing written');
});
