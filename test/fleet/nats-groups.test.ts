// Group subjects in NATS mode (doc/nats.md): a command to a whole group is stored once, on the
// group's subject, instead of once per member's mailbox; every member reads it from the stream
// and checks the envelope itself, as from its mailbox. Measured here: what one job stores for
// four members both ways (messages and bytes, from the stream's own state), and what the
// servers sent each member for it (their /connz). A member that has
// not acknowledged its membership keeps the job per peer, and gets it when it returns.
import test from 'ava';
import { CMD_STREAM, decodeBody, groupSubject, mailboxSubject } from '../../control/wire/index.ts';
import { extraPeer } from '../control/command-fixture.ts';
import { until } from '../helpers.ts';
import { natsFleet } from './_nats-fleet.ts';

test('a command to a whole group is stored once on its subject and runs once on every member; a member without an ack keeps it per peer', async (t) => {
  const { p, cluster, broker, peer, op: connectOp } = await natsFleet(t);
  const ids = [p.p1, p.p2, await extraPeer(p, 'p3'), await extraPeer(p, 'p4')];
  const names = ids.map((id) => id.cert.peerId as string);
  const peers: Array<Awaited<ReturnType<typeof peer>>> = [];
  for (const id of ids) peers.push(await peer(id));
  await until('all four known', () => names.every((n) => broker.db.peer(n) !== undefined));
  const op = await connectOp();
  await op.createGroup('web');
  const members = await op.changeMembers('web', names, true, { timeoutMs: 30_000 });
  t.deepEqual(
    members.map((x) => x.outcome),
    names.map(() => 'applied'),
  );
  await until('every ack recorded', () => broker.db.ackedHolders('web').length === 4);

  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cluster.urls });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const state = async () => (await jsm.streams.info(CMD_STREAM)).state;
  /** The subjects of what the stream stored after sequence `after`, and the job ids in them. */
  const storedAfter = async (after: number) => {
    const out: Array<{ subject: string; jobId: string }> = [];
    for (let seq = after + 1; ; ) {
      const m = await jsm.streams
        .getMessage(CMD_STREAM, { seq, next_by_subj: 'mway.cmd.>' } as never)
        .catch(() => null);
      if (m === null) break;
      seq = m.seq + 1;
      out.push({ subject: m.subject, jobId: decodeBody(m.data).jobId as string });
    }
    return out;
  };

  /** Bytes the servers sent the members' connections so far (their own /connz, all nodes). */
  const sentToMembers = async () => {
    let sum = 0;
    for (const n of cluster.nodes) {
      const r = (await (await fetch(`http://127.0.0.1:${n.httpPort}/connz?limit=1024`)).json()) as {
        connections?: Array<{ name?: string; out_bytes?: number }>;
      };
      for (const c of r.connections ?? [])
        if (names.some((x) => c.name === `mway-peer-${x}`)) sum += c.out_bytes ?? 0;
    }
    return sum;
  };

  const before = await state();
  const sentBefore = await sentToMembers();
  const grouped = await op.run({
    action: 'service.restart',
    args: { service: 'grouped' },
    target: 'group:web',
    timeoutMs: 60_000,
  });
  t.deepEqual(
    grouped.peers.map((x) => `${x.peer} ${x.outcome}`).sort(),
    names.map((n) => `${n} ok`),
  );
  const afterGroup = await state();
  const sentPerMember = ((await sentToMembers()) - sentBefore) / 4;
  t.deepEqual(await storedAfter(before.last_seq), [{ subject: groupSubject('web'), jobId: grouped.jobId }]);

  const perPeer = await op.run({
    action: 'service.restart',
    args: { service: 'per-peer' },
    target: names.map((n) => `peer:${n}`).join(','),
    timeoutMs: 60_000,
  });
  t.deepEqual(
    perPeer.peers.map((x) => `${x.peer} ${x.outcome}`).sort(),
    names.map((n) => `${n} ok`),
  );
  const afterPeers = await state();
  t.deepEqual(
    (await storedAfter(afterGroup.last_seq)).map((x) => x.subject).sort(),
    names.map(mailboxSubject).sort(),
  );
  const groupBytes = afterGroup.bytes - before.bytes;
  const peerBytes = afterPeers.bytes - afterGroup.bytes;
  // Each member gets the job once: its STREAM.MSG.GET answer (JSON, the message in base64: 4/3
  // of it) and a payload-free wake-up, plus its idle polls; a core copy of the stored message as
  // its wake-up would add the message once more (2.33x or more).
  t.log(
    `servers sent each member ${sentPerMember.toFixed(0)} B for the group job (${(sentPerMember / groupBytes).toFixed(2)}x the stored message)`,
  );
  t.true(sentPerMember < 2 * groupBytes, 'the stored message reaches each member once');
  t.log(
    `one job to 4 members: group subject 1 message ${groupBytes} B; per peer 4 messages ${peerBytes} B (${(peerBytes / groupBytes).toFixed(2)}x)`,
  );
  // Each per-peer copy is the whole envelope (its signature and the operator's chain).
  t.true(peerBytes > 3.5 * groupBytes, `${peerBytes} vs ${groupBytes}`);
  for (const x of peers) t.deepEqual(x.rec.calls, ['restart grouped', 'restart per-peer'], 'each ran once');

  // p4 is offline when it is added to a second group: no ack, so that group's command goes per
  // peer; p4 gets the membership and the command from its mailbox when it returns.
  await peers[3]?.link.stop();
  await op.createGroup('db');
  const adding = op.changeMembers('db', ['p3', 'p4'], true, { timeoutMs: 60_000 });
  await until('p3 acked db', () => broker.db.ackedHolders('db').includes('p3'));
  const beforeDb = await state();
  const running = op.run({
    action: 'service.restart',
    args: { service: 'db' },
    target: 'group:db',
    timeoutMs: 60_000,
  });
  await until('p3 ran db', () => peers[2]?.rec.calls.includes('restart db') === true);
  const back = await peer(ids[3] as (typeof ids)[number]);
  const r = await running;
  await adding;
  t.deepEqual(r.peers.map((x) => `${x.peer} ${x.outcome}`).sort(), ['p3 ok', 'p4 ok']);
  t.deepEqual((await storedAfter(beforeDb.last_seq)).map((x) => x.subject).sort(), [
    mailboxSubject('p3'),
    mailboxSubject('p4'),
  ]);
  t.deepEqual(back.rec.calls, ['restart db']);
});
