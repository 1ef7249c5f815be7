// Jobs in NATS mode: `mway job cancel`, --batch and --max-fail (doc/nats.md, "Cancelling a job"), through milkywaysrvd over a
// real 3-node JetStream cluster. A command already stored in a mailbox cannot be withdrawn (the
// streams deny deletes), so the signed cancellation is stored behind it: a peer that was offline
// reads both when it returns and must honour the later cancellation before it runs the earlier
// command. A command the peer already runs is reported as received, one queued behind it is
// cancelled, as over TLS.
import test from 'ava';
import type { AgentApi } from '../../agent/core/agent-api.ts';
import { AgentError } from '../../agent/core/agent-error.ts';
import { CMD_STREAM, decodeBody, mailboxSubject } from '../../control/wire/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { extraPeer } from '../control/command-fixture.ts';
import { until } from '../helpers.ts';
import { natsFleet } from './_nats-fleet.ts';

/**
 * A recorder whose `restart slow` holds until released (the command is running meanwhile) and
 * whose `restart missing` fails as the agent does for an unknown service.
 */
function slowRecorder() {
  const rec = recorder();
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const inner = rec.api.restartService;
  const api: AgentApi = {
    ...rec.api,
    restartService: async (n) => {
      if (n === 'missing') throw new AgentError('E_SERVICE_UNKNOWN', `No service ${n}`);
      if (n === 'slow') {
        rec.calls.push('started slow');
        await held;
      }
      return inner(n);
    },
  };
  return { rec: { ...rec, api }, release };
}

test('mway job cancel in NATS mode: an offline peer honours a cancellation stored behind the command; a running command reports it ran, one queued behind it is cancelled', async (t) => {
  const { p, broker, peer, op: connectOp } = await natsFleet(t);
  const op = await connectOp();

  // p2 is known (one signed status) and then offline while its membership of web, a command
  // to web, one to p2 by name and a cancellation of the first command are stored in its mailbox.
  // The cancellation needs the membership (its audience is web), which is earlier in the backlog.
  const first = await peer(p.p2);
  await until('p2 known', () => broker.db.peer('p2') !== undefined);
  await first.link.stop();
  await op.createGroup('web');
  await op.changeMembers('web', ['p2'], true, { timeoutMs: 1000 });
  const jobs: string[] = [];
  for (const [service, target] of [
    ['cancelled', 'group:web'],
    ['after', 'peer:p2'],
  ] as const) {
    const r = await op.run({ action: 'service.restart', args: { service }, target, async: true });
    jobs.push(r.jobId);
  }
  const [victim] = jobs as [string, string];
  const held = await op.cancel(victim, { timeoutMs: 1500 });
  t.deepEqual(
    held.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p2 held back'],
  );

  // p2 returns: it reads the four messages, applies the membership, then the cancellation found
  // behind the command, and runs the other command.
  const back = await peer(p.p2);
  await until('p2 answered all three', async () => {
    const answered = await Promise.all([...jobs, held.cancelJobId].map((j) => op.job(j)));
    return answered.every((j) =>
      j.peers.every((x) => x.outcome !== 'no answer' && x.outcome !== 'cancelled'),
    );
  });
  t.deepEqual(back.rec.calls, ['restart after'], 'the cancelled command never ran');
  const v = await op.job(victim);
  t.deepEqual(
    v.peers.map((x) => `${x.peer} ${x.outcome} ${x.code}`),
    ['p2 refused E_CMD_CANCELLED'],
  );
  const c = await op.job(held.cancelJobId);
  t.deepEqual(
    c.peers.map((x) => `${x.peer} ${x.outcome} ${(x.output as { state?: string } | undefined)?.state}`),
    ['p2 ok cancelled'],
  );

  // Online: p1 runs `slow` (held), `queued` waits behind it in the link's queue.
  const slow = slowRecorder();
  const p1 = await peer(p.p1, slow.rec);
  await until('p1 known', () => broker.db.peer('p1') !== undefined);
  const running = await op.run({
    action: 'service.restart',
    args: { service: 'slow' },
    target: 'peer:p1',
    async: true,
  });
  await until('slow started', () => slow.rec.calls.includes('started slow'));
  const queued = await op.run({
    action: 'service.restart',
    args: { service: 'queued' },
    target: 'peer:p1',
    async: true,
  });
  // The queued command's delivery reached the peer (its mailbox read moved past it).
  await new Promise((r) => setTimeout(r, 1000));
  const c1 = await op.cancel(running.jobId, { timeoutMs: 15_000 });
  t.deepEqual(
    c1.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 already received'],
    'a command that runs already cannot be cancelled, and says so',
  );
  const c2 = await op.cancel(queued.jobId, { timeoutMs: 15_000 });
  t.deepEqual(
    c2.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 cancelled'],
  );
  slow.release();
  await until('slow answered', async () => (await op.job(running.jobId)).peers[0]?.outcome === 'ok');
  await until('queued answered', async () => (await op.job(queued.jobId)).peers[0]?.outcome === 'refused');
  t.is((await op.job(queued.jobId)).peers[0]?.code, 'E_CMD_CANCELLED');
  t.deepEqual(p1.rec.calls, ['started slow', 'restart slow'], 'only the running command ran');
});

test('--batch and --max-fail in NATS mode: the window holds back the next peers until the first answer, a failure past the budget skips the rest, whose mailboxes never get the command', async (t) => {
  const { p, broker, peer, op: connectOp, cluster } = await natsFleet(t);
  const ids = [p.p1, p.p2, await extraPeer(p, 'p3'), await extraPeer(p, 'p4')];
  const slows = ids.map(() => slowRecorder());
  for (const [i, id] of ids.entries()) await peer(id, slows[i]?.rec);
  await until('all known', () => ids.every((id) => broker.db.peer(id.cert.peerId as string) !== undefined));
  const op = await connectOp();
  await op.createGroup('web');
  const members = await op.changeMembers('web', ['p1', 'p2', 'p3', 'p4'], true, { timeoutMs: 30_000 });
  t.deepEqual(
    members.map((x) => x.outcome),
    ['applied', 'applied', 'applied', 'applied'],
  );
  const started = () => slows.filter((s) => s.rec.calls.includes('started slow')).length;

  // --batch 2: two peers run `slow` (held); the other two get nothing until one answers.
  const job = op.run({
    action: 'service.restart',
    args: { service: 'slow' },
    target: 'group:web',
    batch: '2',
    timeoutMs: 60_000,
  });
  await until('two started', () => started() === 2);
  await new Promise((r) => setTimeout(r, 1500));
  t.is(started(), 2, 'the window holds the others back');
  const firstTwo = slows.filter((s) => s.rec.calls.includes('started slow'));
  firstTwo[0]?.release();
  await until('a third started', () => started() === 3);
  for (const s of slows) s.release();
  const r = await job;
  t.deepEqual(
    r.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 ok', 'p2 ok', 'p3 ok', 'p4 ok'],
  );
  t.deepEqual(
    slows.map((s) => s.rec.calls.filter((c) => c === 'restart slow').length),
    [1, 1, 1, 1],
  );

  // --batch 1 --max-fail 0: the first peer's failure stops the rollout; the rest are skipped
  // and nothing is stored in their mailboxes.
  const failing = await op.run({
    action: 'service.restart',
    args: { service: 'missing' },
    target: 'group:web',
    batch: '1',
    maxFail: '0',
    timeoutMs: 30_000,
  });
  const outcomes = failing.peers.map((x) => x.outcome).sort();
  t.deepEqual(outcomes, ['failed', 'skipped', 'skipped', 'skipped'], JSON.stringify(failing.peers));
  const ran = failing.peers.find((x) => x.outcome === 'failed')?.peer as string;
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cluster.urls });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  for (const peerId of ['p1', 'p2', 'p3', 'p4']) {
    const last = await jsm.streams.getMessage(CMD_STREAM, { last_by_subj: mailboxSubject(peerId) });
    const m = last === null ? undefined : decodeBody(last.data);
    t.is(m?.jobId === failing.jobId, peerId === ran, `${peerId}'s mailbox`);
  }
});

test('a restarted broker reads MWAY_RES from the cursor it saved, and takes an answer stored while it was down', async (t) => {
  const { p, broker: before, peer, op: connectOp, logs, restartBroker } = await natsFleet(t);
  const first = await peer(p.p1);
  await until('p1 known', () => before.db.peer('p1') !== undefined);
  const op = await connectOp();
  for (const service of ['a', 'b', 'c']) {
    const r = await op.run({
      action: 'service.restart',
      args: { service },
      target: 'peer:p1',
      timeoutMs: 30_000,
    });
    t.is(r.peers[0]?.outcome, 'ok');
  }
  // A job for p1 is stored while p1 is offline; the broker is down when p1 returns and answers.
  await first.link.stop();
  const late = await op.run({
    action: 'service.restart',
    args: { service: 'late' },
    target: 'peer:p1',
    async: true,
  });
  op.close();
  let back: Awaited<ReturnType<typeof peer>> | undefined;
  const broker = await restartBroker(async () => {
    back = await peer(p.p1);
    await until('p1 ran it', () => back?.rec.calls.includes('restart late') === true);
    // Its answer is stored (the link's cursor moves only after that).
    await new Promise((r) => setTimeout(r, 1000));
  });
  // Three answers were read before: the broker goes on from the fourth, not from the start.
  t.true(
    logs.some((l) => l.includes('reading NATS answers from MWAY_RES sequence 4')),
    logs.join('\n'),
  );
  const op2 = await connectOp();
  await until('the late job completed', async () => (await op2.job(late.jobId)).peers[0]?.outcome === 'ok');
  t.truthy(broker.db.state('nats.res.cursor'));
});
