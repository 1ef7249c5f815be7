// The real broker turned hostile through its test-only outgoing hook: it tampers with,
// retargets, replays and delays commands and invents group memberships. The peers refuse
// each with its own code, the operator client reports the signed refusals, and nothing runs.
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { OutgoingHook } from '../../control/broker/broker.ts';
import { OperatorClient } from '../../control/operator/operator-client.ts';
import { buildCommand, envelopeDigest } from '../../control/wire/command.ts';
import type { Message } from '../../control/wire/protocol.ts';
import { signEnvelope } from '../../keys/index.ts';
import { type Recorder, recorder } from '../agent/remote/recording-agent.ts';
import { type FleetPki, makeFleetPki } from '../control/command-fixture.ts';
import { tempDir, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

async function fleet(t: ExecutionContext, hook: { current: OutgoingHook | undefined }, lagMs = 0) {
  const p: FleetPki = await pkiP;
  const f = await startFleet(t, p, {
    broker: {
      // A broker that delays may also lie about the time, so it does not expire what it holds back.
      now: () => new Date(Date.now() - lagMs),
      hooks: { outgoing: (o) => (hook.current === undefined ? [o.message] : hook.current(o)) },
    },
  });
  const { broker, address, dir } = f;
  const recs: Record<string, Recorder> = {};
  for (const id of [p.p1, p.p2]) {
    const rec = recorder();
    recs[id.cert.peerId as string] = rec;
    await f.start(id, { api: rec.api, config: { skewMs: 0 } });
  }
  const op = await OperatorClient.connect(
    {
      broker: address,
      fleet: 'prod',
      key: p.op.keyPath,
      cert: p.op.certPath,
      anchors: [p.root.certPath],
      crls: [],
    },
    join(dir, 'mway'),
  );
  t.teardown(() => op.close());
  await op.createGroup('web');
  for (const peer of ['p1', 'p2']) await op.setMember('web', peer, true);
  await until('memberships held', async () =>
    (await op.peers()).every((x) =>
      ((x.status as { payload?: { groups?: string[] } })?.payload?.groups ?? []).includes('web'),
    ),
  );
  return { p, broker, op, recs, calls: () => [...(recs.p1?.calls ?? []), ...(recs.p2?.calls ?? [])] };
}

const deliveries =
  (f: (m: Message) => Message[] | Promise<Message[]>): OutgoingHook =>
  (o) =>
    o.message.kind === 'command-deliver' ? f(o.message) : [o.message];

test('a tampered command is refused by every peer with E_CMD_SIGNATURE and reported', async (t) => {
  const hook: { current: OutgoingHook | undefined } = { current: undefined };
  const { op, calls } = await fleet(t, hook);
  hook.current = deliveries((m) => {
    const c = m.command as { payload: Record<string, unknown> };
    return [{ ...m, command: { ...c, payload: { ...c.payload, args: { service: 'database' } } } }];
  });
  const r = await op.run({
    action: 'service.stop',
    args: { service: 'hello' },
    target: 'group:web',
    timeoutMs: 10_000,
  });
  t.deepEqual(
    r.peers.map((x) => `${x.peer} ${x.outcome} ${x.code}`),
    ['p1 refused E_CMD_SIGNATURE', 'p2 refused E_CMD_SIGNATURE'],
  );
  t.deepEqual(r.summary, { targeted: 2, succeeded: 0, failed: 2, noAnswer: 0 });
  t.deepEqual(calls(), []);
});

test('a replayed delivery runs once; a command delayed past its expiry is refused with E_CMD_EXPIRED', async (t) => {
  const hook: { current: OutgoingHook | undefined } = { current: undefined };
  const { op, calls } = await fleet(t, hook, 30_000);
  hook.current = deliveries((m) => [m, m, m]);
  const once = await op.run({
    action: 'service.restart',
    args: { service: 'hello' },
    target: 'group:web',
    timeoutMs: 10_000,
  });
  t.is(once.summary.succeeded, 2);
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(calls(), ['restart hello', 'restart hello'], 'three deliveries, one execution per peer');

  hook.current = deliveries(async (m) => {
    await new Promise((r) => setTimeout(r, 2500));
    return [m];
  });
  const late = await op.run({
    action: 'service.stop',
    args: { service: 'hello' },
    target: 'group:web',
    ttlMs: 1000,
    timeoutMs: 10_000,
  });
  // The broker (its clock held back) did not expire it, so each peer's signed refusal comes back.
  t.deepEqual(
    late.peers.map((x) => `${x.peer} ${x.outcome} ${x.code}`),
    ['p1 refused E_CMD_EXPIRED', 'p2 refused E_CMD_EXPIRED'],
  );
  t.deepEqual(calls(), ['restart hello', 'restart hello']);
});

test('a retargeted command and an invented membership are refused; the operator sees the refusals', async (t) => {
  const hook: { current: OutgoingHook | undefined } = { current: undefined };
  const { p, op, calls } = await fleet(t, hook);
  // Retarget: a command signed for p1 only, which the broker also hands to p2.
  const command = buildCommand({
    action: 'service.stop',
    args: { service: 'hello' },
    audience: { fleet: 'prod', target: 'peer:p1', groups: ['web'], peers: ['p1'] },
    seq: await op.nextSeq(),
    key: p.op.key,
    chain: p.op.chain,
  });
  const id = (command.payload as { id: string }).id;
  await op.client.request('command-submit', {
    jobId: id,
    command,
    targets: ['p2'],
    expiresAt: (command.payload as { expiresAt: string }).expiresAt,
    watch: true,
  });
  const [r] = await op.collect(id, envelopeDigest(command), ['p2'], { timeoutMs: 10_000 });
  t.is(`${r?.outcome} ${r?.code}`, 'refused E_CMD_NOT_ADDRESSED');

  // Invented membership: the broker claims p2 is in group db (its peer list) and forges a
  // membership envelope for it; p2 refuses both and the db command.
  const forged = signEnvelope({
    type: 'result',
    payload: {
      v: 1,
      fleet: 'prod',
      group: 'db',
      peer: 'p2',
      member: true,
      issuedAt: new Date().toISOString(),
    },
    key: p.p2.key,
    chain: p.p2.chain,
  });
  hook.current = (o) => {
    const m = o.message;
    if (o.to === 'peer' && o.identity === 'p2' && m.kind === 'command-deliver') {
      return [
        {
          v: 1,
          kind: 'membership-deliver',
          group: 'db',
          peerId: 'p2',
          op: 'put',
          membership: { ...forged, type: 'membership' },
        },
        m,
      ];
    }
    if (o.to === 'operator' && m.kind === 'reply' && Array.isArray(m.peers)) {
      const peers = (m.peers as Array<{ peerId: string; groups: string[] }>).map((x) =>
        x.peerId === 'p2' ? { ...x, groups: [...x.groups, 'db'] } : x,
      );
      return [{ ...m, peers }];
    }
    return [m];
  };
  const admin = await OperatorClient.connect(
    {
      broker: op.cfg.broker,
      fleet: 'prod',
      key: p.admin.keyPath,
      cert: p.admin.certPath,
      anchors: [p.root.certPath],
      crls: [],
    },
    join(await tempDir(t), 'mway'),
  );
  t.teardown(() => admin.close());
  const db = await admin.run({
    action: 'service.stop',
    args: { service: 'hello' },
    target: 'group:db',
    timeoutMs: 10_000,
  });
  t.deepEqual(
    db.peers.map((x) => `${x.peer} ${x.outcome} ${x.code}`),
    ['p2 refused E_CMD_NOT_MEMBER'],
  );
  t.deepEqual(calls(), []);
});
