// Progress on stderr for long operations: shown on a terminal, never with --quiet or --json, and
// never into a pipe. createProgress() against a stand-in stream and clock; then the binaries
// themselves under a real pseudo-terminal made by util-linux `script` (stderr on the pty, stdout
// redirected to a file): `mway-layer pack`, and `mway install` of a layer sent in pieces.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { createProgress, progressShown } from '../../common/progress.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { startFleet } from '../fleet/_fleet.ts';
import { BINS, cli, jsonOut, tempDir } from '../helpers.ts';
import { pki } from '../layers/fixture.ts';

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (s: string) => chunks.push(s) };
}

test('createProgress() draws steps, bytes, percentage and the rate since the step began', (t) => {
  const s = fakeStream(true);
  let clock = 1_000;
  const p = createProgress({ stream: s, now: () => clock });
  p.step('hashing');
  p.bytes(1024 * 1024, 8 * 1024 * 1024);
  clock += 50; // within the redraw interval: not drawn
  p.bytes(2 * 1024 * 1024, 8 * 1024 * 1024);
  clock += 950; // one second after the step began: 4 MiB done
  p.bytes(4 * 1024 * 1024, 8 * 1024 * 1024);
  p.bytes(8 * 1024 * 1024, 8 * 1024 * 1024); // the last one is always drawn
  p.done('finished');
  const out = s.chunks.join('');
  t.true(out.includes('• hashing'));
  t.true(out.includes('1.0 MiB / 8.0 MiB 13%'), 'no rate in the first 250 ms');
  t.false(out.includes('2.0 MiB / 8.0 MiB'), 'redraws are throttled');
  t.true(out.includes('4.0 MiB / 8.0 MiB 50%, 4.0 MiB/s'));
  t.true(out.includes('8.0 MiB / 8.0 MiB 100%, 8.0 MiB/s'));
  t.true(out.endsWith('\nfinished\n'));
});

test('progress is shown only on a terminal, and not with --json, --quiet or TERM=dumb', (t) => {
  t.true(progressShown({}, fakeStream(true)));
  t.false(progressShown({}, fakeStream(false)));
  t.false(progressShown({ json: true }, fakeStream(true)));
  t.false(progressShown({ quiet: true }, fakeStream(true)));
  const term = process.env.TERM;
  process.env.TERM = 'dumb';
  try {
    t.false(progressShown({}, fakeStream(true)));
  } finally {
    if (term === undefined) delete process.env.TERM;
    else process.env.TERM = term;
  }
  const s = fakeStream(false);
  const p = createProgress({ stream: s });
  p.step('x');
  p.bytes(1, 2);
  p.done('y');
  t.deepEqual(s.chunks, [], 'a silent reporter writes nothing, not even the summary');
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a binary with stderr on a pseudo-terminal (util-linux script) and stdout into a file. */
async function onTty(
  dir: string,
  bin: keyof typeof BINS,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ exitCode: number; tty: string; stdout: string }> {
  const outFile = join(dir, `stdout-${randomBytes(4).toString('hex')}`);
  const cmd = `exec ${[process.execPath, BINS[bin], ...args].map(q).join(' ')} >${q(outFile)}`;
  const r = await execa('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
    reject: false,
    timeout: 120_000,
    stdin: 'ignore',
    env: { ...env, TERM: 'xterm', NO_COLOR: '1' },
  });
  return {
    exitCode: r.exitCode ?? 1,
    tty: String(r.stdout).replace(/\r\n/g, '\n'),
    stdout: await readFile(outFile, 'utf8').catch(() => ''),
  };
}

test('mway-layer pack shows its steps on a terminal; nothing with --quiet, --json or into a pipe', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = join(dir, 'demo');
  t.is((await cli('mway-layer', ['init', 'demo', src])).exitCode, 0);
  await writeFile(join(src, 'rootfs/data.bin'), randomBytes(3 * 1024 * 1024));
  const pack = (out: string, ...extra: string[]) => [
    'pack',
    src,
    '--key',
    p.vendor.keyPath,
    '--cert',
    p.vendor.certPath,
    '-o',
    join(dir, out),
    ...extra,
  ];
  const shown = await onTty(dir, 'mway-layer', pack('a.mwl'));
  t.is(shown.exitCode, 0, shown.tty);
  t.regex(shown.tty, /• building erofs payload/);
  t.regex(shown.tty, /• writing layer/);
  t.regex(shown.stdout, /^packed demo/, 'the result stays on stdout');
  t.notRegex(shown.stdout, /•/, 'no progress on stdout');

  const quiet = await onTty(dir, 'mway-layer', pack('b.mwl', '--quiet'));
  t.is(quiet.exitCode, 0, quiet.tty);
  t.is(quiet.tty, '');
  t.regex(quiet.stdout, /^packed demo/);

  const short = await onTty(dir, 'mway-layer', pack('c.mwl', '-q'));
  t.is(short.tty, '');

  const json = await onTty(dir, 'mway-layer', pack('d.mwl', '--json'));
  t.is(json.exitCode, 0, json.tty);
  t.is(json.tty, '');
  t.is((JSON.parse(json.stdout) as { ok: boolean }).ok, true);
  t.is((jsonOut(json.stdout) as { name: string }).name, 'demo');

  const piped = await cli('mway-layer', pack('e.mwl'));
  t.is(piped.exitCode, 0, piped.stderr);
  t.is(piped.stderr, '');
});

test('mway install of a layer sent in pieces shows the bytes sent on a terminal; nothing with --quiet', async (t) => {
  const p = await makeFleetPki();
  const fleet = await startFleet(t, p);
  await fleet.start(p.p1);
  const mway = await fleet.as(p.admin, 'admin');
  const big = join(fleet.dir, 'big.mwl');
  await writeFile(big, randomBytes(5 * 1024 * 1024 + 3));
  const env = { ...mway.env, MWAY_KEY_PASSPHRASE: '' };
  const shown = await onTty(fleet.dir, 'mway', ['install', '--peer', 'p1', big], env);
  t.is(shown.exitCode, 0, shown.tty + shown.stdout);
  t.regex(shown.tty, /• sending .*big\.mwl in pieces/);
  t.regex(shown.tty, /5\.0 MiB \/ 5\.0 MiB 100%/);
  t.regex(shown.tty, /• waiting for the peers to verify and install/);
  t.regex(shown.stdout, /1 targeted, 1 succeeded/);

  const quiet = await onTty(fleet.dir, 'mway', ['install', '--peer', 'p1', big, '--quiet'], env);
  t.is(quiet.exitCode, 0, quiet.tty + quiet.stdout);
  t.is(quiet.tty, '');
  t.regex(quiet.stdout, /1 targeted, 1 succeeded/);
});
