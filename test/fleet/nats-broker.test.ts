// milkywaysrvd in NATS mode against a real 3-node JetStream cluster on 127.0.0.1: `mway`'s
// operator client talks TLS to the broker as always; the broker stores each delivery in the
// peer's mailbox and takes the signed results back from NATS, naming the peer by its
// signature; memberships go the same way. A peer offline when the command is sent gets it when it returns; kill -9 of the
// commands stream's leader between jobs loses nothing; a result stored under another peer's
// subject is ignored.
import test from 'ava';
import { message, messageBody, resultSubject, signResult, CMD_STREAM } from '../../control/wire/index.ts';
import { until } from '../helpers.ts';
import { natsFleet } from './_nats-fleet.ts';

test('mway through milkywaysrvd in NATS mode: results verified and bound, an offline peer served on return, kill -9 of the stream leader between jobs', async (t) => {
  const { p, cluster, broker, peer, op: connectOp, logs } = await natsFleet(t);
  const p1 = await peer(p.p1);
  // A peer's signed status over NATS makes it known to the broker (as a TLS hello does).
  await until('p1 known', () => broker.db.peer('p1') !== undefined);
  const op = await connectOp();
  const r = await op.run({
    action: 'service.restart',
    args: { service: 'hello' },
    target: 'peer:p1',
    timeoutMs: 30_000,
  });
  t.deepEqual(
    r.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 ok'],
  );
  t.deepEqual(p1.rec.calls, ['restart hello']);

  // Memberships travel the same way: the signed statement through p1's mailbox, its signed ack
  // back; then a group-targeted command reaches p1.
  await op.createGroup('web');
  const members = await op.changeMembers('web', ['p1'], true, { timeoutMs: 30_000 });
  t.deepEqual(
    members.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 applied'],
  );
  const rg = await op.run({
    action: 'service.restart',
    args: { service: 'grouped' },
    target: 'group:web',
    timeoutMs: 30_000,
  });
  t.deepEqual(
    rg.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 ok'],
  );
  t.deepEqual(p1.rec.calls, ['restart hello', 'restart grouped']);

  // p2 is known (it sent a status once) but offline when the command is sent.
  const first = await peer(p.p2);
  await until('p2 known', () => broker.db.peer('p2') !== undefined);
  await first.link.stop();
  const running = op.run({
    action: 'service.restart',
    args: { service: 'later' },
    target: 'peer:p2',
    timeoutMs: 60_000,
  });
  await new Promise((r) => setTimeout(r, 1500));
  const back = await peer(p.p2);
  const r2 = await running;
  t.deepEqual(
    r2.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p2 ok'],
  );
  t.deepEqual(back.rec.calls, ['restart later']);

  // The commands stream's leader dies; the next job is stored on the new leader.
  const leader = await cluster.streamLeader(CMD_STREAM);
  await cluster.kill(leader, 'SIGKILL');
  const r3 = await op.run({
    action: 'service.restart',
    args: { service: 'failover' },
    target: 'peer:p1',
    timeoutMs: 60_000,
  });
  t.deepEqual(
    r3.peers.map((x) => `${x.peer} ${x.outcome}`),
    ['p1 ok'],
  );
  t.deepEqual(
    p1.rec.calls,
    ['restart hello', 'restart grouped', 'restart failover'],
    'each command ran once',
  );

  // A result signed by p2 but stored under p1's subject (a server retargeting it) is ignored.
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cluster.urls.filter((u) => u !== leader.url) });
  t.teardown(() => nc.close());
  const now = new Date().toISOString();
  const forged = signResult(
    {
      v: 1,
      command: 'nope',
      commandDigest: '0'.repeat(64),
      peer: 'p2',
      status: 'ok',
      startedAt: now,
      finishedAt: now,
    },
    p.p2.key,
    p.p2.chain,
  );
  await jetstream(nc).publish(
    resultSubject('p1', 'job-x'),
    messageBody(message('result', { jobId: 'job-x', result: forged, outcome: 'ok' })),
  );
  await until('forged answer refused', () =>
    logs.some((l) => l.includes('answer on NATS mway.res.p1.job-x ignored')),
  );
});
