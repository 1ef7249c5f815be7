// `--json` on a fleet command is JSON Lines: one line per peer's verified result as it arrives
// (while slower peers still run), the peers that never answered after them, then one summary
// line; `--json --static` is the one document at the end. jq (nobody here wrote it) reads the
// stream as a sequence of JSON values.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { makeFleetPki } from '../control/command-fixture.ts';
import { BINS, jsonLinesOut, jsonOut, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

interface Line {
  type: 'result' | 'summary';
  jobId: string;
  peer?: string;
  outcome?: string;
  code?: string;
  output?: { exitCode?: number };
  summary?: { targeted: number; succeeded: number; failed: number; noAnswer: number };
  dryRun?: boolean;
  peers?: string[];
}

// Each line is the --json envelope {ok: true, result} (doc/cli.md); the tests read the results.
const lines = (stdout: string): Line[] => jsonLinesOut(stdout) as Line[];

/** jq -s over the stream: what a shell script consuming it would see. */
async function jq(stdout: string, filter: string): Promise<unknown> {
  const r = await execa('jq', ['-c', '-s', filter], { input: stdout, timeout: 10_000 });
  return JSON.parse(r.stdout);
}

test('mway --json prints one JSON line per result as it arrives, then a summary line; --static one document', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const admin = await f.as(p.admin, 'admin');
  const exec = await f.as(p.execOp, 'exec');
  await f.start(p.p1);
  await f.start(p.p2);
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  t.is((await admin('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);

  // Whoever takes the lock first answers at once; the other sleeps, then leaves `done`.
  const d = join(f.dir, 'race');
  await mkdir(d);
  const script = `mkdir ${d}/lock 2>/dev/null && exit 0; sleep 4; touch ${d}/done`;
  const proc = execa(
    process.execPath,
    [BINS.mway, 'run', '--group', 'web', '--json', '--', 'sh', '-c', script],
    { env: { ...exec.env, NO_COLOR: '1' }, reject: false, buffer: false, timeout: 60_000 },
  );
  let out = '';
  let doneAtFirstLine: Promise<boolean> | undefined;
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (doneAtFirstLine === undefined && out.includes('\n'))
      doneAtFirstLine = access(join(d, 'done')).then(
        () => true,
        () => false,
      );
  });
  const r = await proc;
  t.is(r.exitCode, 0, out);
  t.false(await doneAtFirstLine, 'the first line was printed while the slower peer still ran');
  const got = lines(out);
  t.is(got.length, 3, out);
  const jobId = got[2]?.jobId as string;
  t.regex(jobId, /^[0-9a-f]{32}$/);
  t.deepEqual(
    got.map((l) => [l.type, l.jobId, l.outcome]),
    [
      ['result', jobId, 'ok'],
      ['result', jobId, 'ok'],
      ['summary', jobId, undefined],
    ],
  );
  t.deepEqual(
    got
      .slice(0, 2)
      .map((l) => l.peer)
      .sort(),
    ['p1', 'p2'],
  );
  t.deepEqual(got[2]?.summary, { targeted: 2, succeeded: 2, failed: 0, noAnswer: 0 });
  t.like(got[2], { action: 'exec', target: 'group:web' });
  t.deepEqual(await jq(out, '[.[] | .result.type]'), ['result', 'result', 'summary']);
  t.deepEqual(await jq(out, 'map(.result | select(.type == "result") | .output.exitCode)'), [0, 0]);

  // A remote failure: its line says so, the summary counts it, the exit code is 1.
  const bad = await exec('run', '--peer', 'p2', '--json', '--', 'sh', '-c', 'exit 7');
  t.is(bad.exitCode, 1, bad.stderr);
  const [fail, sum] = lines(bad.stdout);
  t.like(fail, {
    type: 'result',
    peer: 'p2',
    outcome: 'failed',
    code: 'E_EXEC_EXIT',
    output: { exitCode: 7 },
  });
  t.like(sum, { type: 'summary', summary: { targeted: 1, succeeded: 0, failed: 1, noAnswer: 0 } });

  // --static: the one document, with the same per-peer outcomes the lines gave.
  const st = await admin('status', '--group', 'web', '--json', '--static');
  t.is(st.exitCode, 0, st.stderr);
  const doc = jsonOut(st.stdout) as { peers: Array<{ peer: string; outcome: string }> };
  t.deepEqual(
    doc.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 ok', 'p2 ok'],
  );
  // A dry run is one summary line with the peers it would reach; nothing is sent.
  const dry = await admin('status', '--group', 'web', '--dry-run', '--json');
  t.is(dry.exitCode, 0, dry.stderr);
  t.deepEqual(lines(dry.stdout), [
    {
      type: 'summary',
      jobId: '',
      action: 'status',
      target: 'group:web',
      dryRun: true,
      peers: ['p1', 'p2'],
      summary: { targeted: 2, succeeded: 0, failed: 0, noAnswer: 2 },
    } as Line,
  ]);
  // --static is a form of --json: alone it is a usage error.
  const alone = await admin('status', '--group', 'web', '--static');
  t.is(alone.exitCode, 2);
  t.regex(alone.stderr, /E_USAGE: --static is an output form of --json/);

  // A peer that never answers gets its line after the ones that did, before the summary.
  await f.links.get('p2')?.stop();
  await until('p2 offline', () => !f.broker.peers.has('p2'));
  const part = await admin('status', '--group', 'web', '--timeout', '3', '--json');
  t.is(part.exitCode, 1);
  t.deepEqual(
    lines(part.stdout).map((l) => [l.type, l.peer, l.outcome]),
    [
      ['result', 'p1', 'ok'],
      ['result', 'p2', 'no answer'],
      ['summary', undefined, undefined],
    ],
  );
  t.like(lines(part.stdout)[2], { summary: { targeted: 2, succeeded: 1, failed: 0, noAnswer: 1 } });
});
