// Cancelling and watching jobs: `mway job cancel` (by id prefix) holds back a command queued for
// an offline peer, which gets the signed cancellation instead when it returns and refuses the
// original even if a broker delivers it after all (E_CMD_CANCELLED); `mway run` prints each
// peer's line as its result arrives, while slower peers are still running.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { message } from '../../control/wire/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { BINS, jsonOut, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test('mway job cancel holds back a command for an offline peer, which then refuses it whoever delivers it', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const mway = await f.as(p.admin, 'admin', 60_000);
  const r1 = recorder();
  const r2 = recorder();
  await f.start(p.p1, { api: r1.api });
  const l2 = await f.start(p.p2, { api: r2.api });
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  await l2.stop();
  await until('p2 offline', () => !f.broker.peers.has('p2'));

  const sent = await mway('service', '--group', 'web', 'restart', 'hello', '--async');
  const jobId = sent.stdout.trim();
  t.regex(jobId, /^[0-9a-f]{32}$/);
  await until('p1 ran it', () => r1.calls.includes('restart hello'));
  const cancel = await mway('job', 'cancel', jobId.slice(0, 8));
  t.is(cancel.exitCode, 0, cancel.stdout + cancel.stderr);
  t.regex(cancel.stdout, /p2: held back \(offline/);
  t.regex(cancel.stdout, /1 of 1 open deliveries cancelled/);
  const shown = jsonOut((await mway('job', jobId.slice(0, 6), '--json')).stdout) as {
    peers: Array<{ peer: string; outcome: string; code?: string }>;
  };
  t.deepEqual(
    shown.peers.map((x) => [x.peer, x.outcome, x.code]),
    [
      ['p1', 'ok', undefined],
      ['p2', 'cancelled', 'E_JOB_CANCELLED'],
    ],
  );

  // p2 comes back: it gets the cancellation, not the command.
  await f.start(p.p2, { api: r2.api });
  await new Promise((r) => setTimeout(r, 1500));
  t.deepEqual(r2.calls, [], 'the cancelled command never ran on p2');
  // A broker that delivers it anyway (a replay, a bug, a hostile relay) gets a signed refusal.
  const original = (f.broker.db.job(jobId) as { command: unknown }).command;
  f.broker.sendToPeer(
    'p2',
    message('command-deliver', {
      jobId,
      command: original,
      expiresAt: (f.broker.db.job(jobId) as { expiresAt: string }).expiresAt,
    }),
  );
  await until('p2 refused it', async () => {
    const j = jsonOut((await mway('job', jobId, '--json')).stdout) as {
      peers: Array<{ peer: string; code?: string }>;
    };
    return j.peers.find((x) => x.peer === 'p2')?.code === 'E_CMD_CANCELLED';
  });
  t.deepEqual(r2.calls, []);

  // Nothing left to cancel: said so, exit 0; an unknown prefix is E_JOB_UNKNOWN.
  t.regex((await mway('job', 'cancel', jobId)).stdout, /nothing left to cancel/);
  t.regex((await mway('job', 'cancel', 'ffffffff')).stderr, /E_JOB_UNKNOWN/);
});

test('mway run prints each peer as its result arrives, before slower peers finish', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const exec = await f.as(p.execOp, 'exec');
  const admin = await f.as(p.admin, 'admin');
  await f.start(p.p1);
  await f.start(p.p2);
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  t.is((await admin('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  const d = join(f.dir, 'race');
  await mkdir(d);
  // Whoever takes the lock first answers at once; the other sleeps, then leaves `done`.
  const script = `mkdir ${d}/lock 2>/dev/null && exit 0; sleep 4; touch ${d}/done`;
  const proc = execa(process.execPath, [BINS.mway, 'run', '--group', 'web', '--', 'sh', '-c', script], {
    env: exec.env,
    reject: false,
    buffer: false,
    timeout: 60_000,
  });
  let out = '';
  let doneWhenFirstLine: boolean | undefined;
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (doneWhenFirstLine === undefined && /\np[12] +ok/.test(out))
      doneWhenFirstLine = access(join(d, 'done')).then(
        () => true,
        () => false,
      ) as unknown as boolean;
  });
  const r = await proc;
  t.is(r.exitCode, 0, out);
  t.false(await doneWhenFirstLine, 'the first line was printed while the slower peer still ran');
  t.regex(out, /^PEER +OUTCOME +DETAIL\n(p[12]) +ok +.*\n(?!\1)p[12] +ok .*\n[\s\S]*2 targeted, 2 succeeded/);
});
