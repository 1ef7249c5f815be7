// NATS mode against a real 3-node JetStream cluster (Debian's nats-server on 127.0.0.1, free
// ports): the broker side stores operator-signed commands in a peer's mailbox, a real peer link
// reads them over NATS and answers with signed results. The servers are untrusted: a replayed,
// tampered or retargeted delivery is refused by the peer with its code; kill -9 of the
// commands stream's leader mid-rollout loses no stored command and runs none twice; a peer that
// was offline gets exactly the commands it missed, in order, and after a restart runs none again.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parsePeerLinkConfig, startPeerLink } from '../../../agent/remote/peer-link.ts';
import { NatsRelay } from '../../../control/broker/index.ts';
import {
  type Audience,
  buildCommand,
  CMD_STREAM,
  envelopeDigest,
  mailboxSubject,
  type Message,
  verifyResult,
} from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { type FleetPki, type Id, makeFleetPki } from '../command-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';
import { tempDir } from '../../helpers.ts';

const pkiP = makeFleetPki();

let seqs = 0;
function cmd(by: Id, peer: string, service: string, o: { ttlMs?: number } = {}): Envelope {
  const audience: Audience = { fleet: 'prod', target: `peer:${peer}`, groups: [], peers: [peer] };
  return buildCommand({
    action: 'service.restart',
    args: { service },
    audience,
    seq: ++seqs,
    key: by.key,
    chain: by.chain,
    ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
  });
}

async function peer(
  t: ExecutionContext,
  p: FleetPki,
  who: 'p1' | 'p2',
  servers: string[],
  stateDir?: string,
) {
  const rec = recorder();
  const logs: string[] = [];
  const dir = stateDir ?? (await tempDir(t));
  const id = p[who];
  const link = await startPeerLink({
    api: rec.api,
    stateDir: dir,
    log: (level, m) => logs.push(`${level}: ${m}`),
    config: {
      nats: { servers },
      fleet: 'prod',
      key: id.keyPath,
      cert: id.certPath,
      kemKey: id.kemKeyPath,
      anchors: [p.root.certPath],
      skewMs: 0,
      maxBackoffMs: 500,
    },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await link.stop();
  };
  t.teardown(stop);
  return { rec, logs, link, stateDir: dir, stop };
}

let jobs = 0;
const expires = () => new Date(Date.now() + 600_000).toISOString();

/** Stores `env` for `peerId` and waits for the peer's answer; returns its verified payload. */
async function roundTrip(
  p: FleetPki,
  relay: NatsRelay,
  peerId: string,
  env: unknown,
  jobId = `job-${++jobs}`,
): Promise<{ status: string; code?: string; jobId: string; m: Message }> {
  await relay.deliver(peerId, jobId, env as Envelope, expires());
  const m = await relay.answer(peerId, jobId, 60_000);
  if (m === undefined) throw new Error(`no answer from ${peerId} to ${jobId}`);
  const r = verifyResult(m.result as Envelope, { anchors: [p.root.cert] });
  if (r.signer.peerId !== peerId) throw new Error(`answer signed by ${r.signer.peerId}`);
  return {
    status: r.payload.status,
    ...(r.payload.code === undefined ? {} : { code: r.payload.code }),
    jobId,
    m,
  };
}

async function clusterAndRelay(t: ExecutionContext) {
  const cluster = await startNatsCluster(t, 3);
  const relay = await NatsRelay.open({ servers: cluster.urls });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  return { cluster, relay };
}

test('commands reach a peer through the cluster; replayed, tampered, retargeted and junk deliveries are refused with their codes', async (t) => {
  const p = await pkiP;
  const { cluster, relay } = await clusterAndRelay(t);
  // The peer talks to one server only; the relay to all: messages cross the cluster's routes.
  const p1 = await peer(t, p, 'p1', [cluster.urls[2] as string]);
  const env = cmd(p.admin, 'p1', 'hello');
  const first = await roundTrip(p, relay, 'p1', env);
  t.is(first.status, 'ok');
  const bound = verifyResult(first.m.result as Envelope, {
    anchors: [p.root.cert],
    expect: { command: (env.payload as { id: string }).id, commandDigest: envelopeDigest(env) },
  });
  t.is(bound.payload.status, 'ok', 'the result is bound to the command it answers');
  // The same job stored again (a retried publish) is a duplicate the servers drop.
  t.true((await relay.deliver('p1', first.jobId, env, expires())).duplicate);
  // Replayed under a new job id (what a hostile server or relay could do): refused, not run.
  t.is((await roundTrip(p, relay, 'p1', env)).code, 'E_CMD_REPLAYED');
  // Tampered: the arguments changed after signing.
  const good = cmd(p.admin, 'p1', 'hello');
  const tampered = { ...good, payload: { ...(good.payload as object), args: { service: 'database' } } };
  t.is((await roundTrip(p, relay, 'p1', tampered)).code, 'E_CMD_SIGNATURE');
  // Retargeted: a command signed for p2 stored in p1's mailbox.
  t.is((await roundTrip(p, relay, 'p1', cmd(p.admin, 'p2', 'hello'))).code, 'E_CMD_NOT_ADDRESSED');
  // A foreign root's operator.
  t.is((await roundTrip(p, relay, 'p1', cmd(p.foreignOp, 'p1', 'hello'))).code, 'E_CMD_OPERATOR_UNTRUSTED');
  // Junk stored straight on the mailbox subject (not a wire message) is skipped, not fatal.
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cluster.urls });
  t.teardown(() => nc.close());
  await jetstream(nc).publish(mailboxSubject('p1'), new TextEncoder().encode('{"not":"a message"'));
  t.is((await roundTrip(p, relay, 'p1', cmd(p.admin, 'p1', 'after-junk'))).status, 'ok');
  t.deepEqual(p1.rec.calls, ['restart hello', 'restart after-junk'], 'only the two genuine commands ran');
  t.true(p1.logs.some((l) => l.includes('NATS mailbox message') && l.includes('ignored')));
});

test('kill -9 of the commands stream leader during a rollout: no stored command lost, none run twice', async (t) => {
  const p = await pkiP;
  const { cluster, relay } = await clusterAndRelay(t);
  const p1 = await peer(t, p, 'p1', cluster.urls);
  const names = Array.from({ length: 10 }, (_, i) => `svc-${i}`);
  const answers: string[] = [];
  for (const [i, name] of names.entries()) {
    if (i === 4) {
      const leader = await cluster.streamLeader(CMD_STREAM);
      t.log(`kill -9 ${leader.name} (leader of ${CMD_STREAM})`);
      await cluster.kill(leader, 'SIGKILL');
    }
    answers.push((await roundTrip(p, relay, 'p1', cmd(p.admin, 'p1', name))).status);
  }
  t.deepEqual(
    answers,
    names.map(() => 'ok'),
  );
  t.deepEqual(
    p1.rec.calls,
    names.map((n) => `restart ${n}`),
    'each ran once, in order',
  );
  // The killed node comes back on its store and the cluster carries on with all three.
  const dead = cluster.nodes.find((n) => n.proc === undefined);
  if (dead !== undefined) await cluster.start(dead);
  await cluster.ready();
  t.is((await roundTrip(p, relay, 'p1', cmd(p.admin, 'p1', 'after'))).status, 'ok');
  t.is(p1.rec.calls.length, 11);
});

test('a peer offline during N commands gets exactly those N in order when it returns, and none again after a restart', async (t) => {
  const p = await pkiP;
  const { cluster, relay } = await clusterAndRelay(t);
  const names = ['a', 'b', 'c', 'd', 'e'];
  const jobIds: string[] = [];
  for (const n of names) {
    const jobId = `off-${++jobs}`;
    jobIds.push(jobId);
    await relay.deliver('p2', jobId, cmd(p.admin, 'p2', n), expires());
  }
  // A node is paused (SIGSTOP) while the peer comes back: the other two serve it.
  const paused = cluster.nodes[0];
  if (paused === undefined) throw new Error('no node');
  await cluster.kill(paused, 'SIGSTOP');
  const p2 = await peer(t, p, 'p2', cluster.urls.slice(1));
  const end = Date.now() + 120_000;
  for (const jobId of jobIds) {
    const m = await relay.answer('p2', jobId, Math.max(1000, end - Date.now()));
    t.truthy(m, `answer to ${jobId}`);
    t.is(verifyResult((m as Message).result as Envelope, { anchors: [p.root.cert] }).payload.status, 'ok');
  }
  await cluster.kill(paused, 'SIGCONT');
  t.deepEqual(
    p2.rec.calls,
    names.map((n) => `restart ${n}`),
  );
  // Restart on the same state: the cursor (and the replay cache behind it) keep all five done.
  await p2.stop();
  const again = await peer(t, p, 'p2', cluster.urls, p2.stateDir);
  const next = await roundTrip(p, relay, 'p2', cmd(p.admin, 'p2', 'f'));
  t.is(next.status, 'ok');
  t.deepEqual(again.rec.calls, ['restart f'], 'nothing of before ran again');
  // The cursor beside the replay cache names the stream and the last answered sequence (f's).
  // It is written just after the answer is stored, so it may trail the answer by a moment.
  const cursorFile = join(p2.stateDir, 'control', 'nats-cursor.json');
  let cursor = { seq: 0 };
  for (let i = 0; i < 100 && cursor.seq < names.length + 1; i++) {
    cursor = JSON.parse(await readFile(cursorFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
  }
  t.like(cursor, { v: 1, stream: CMD_STREAM });
  t.true(cursor.seq >= names.length + 1, `cursor ${cursor.seq}`);
});

test('the nats key of the peer link config: bad values are E_LINK_CONFIG naming the key', (t) => {
  const base = {
    fleet: 'prod',
    key: '/i/peer.key',
    cert: '/i/peer.crt',
    kemKey: '/i/peer.kem.key',
    anchors: ['/certs'],
  };
  const ok = parsePeerLinkConfig({ ...base, nats: { servers: ['nats://10.0.0.5:4222'] } });
  t.deepEqual(ok.nats, { servers: ['nats://10.0.0.5:4222'] });
  const withKey = parsePeerLinkConfig({
    ...base,
    nats: { servers: ['nats://10.0.0.5:4222'], nkey: '/i/peer.nk' },
  });
  t.deepEqual(withKey.nats, { servers: ['nats://10.0.0.5:4222'], nkey: '/i/peer.nk' });
  const withDomain = parsePeerLinkConfig({
    ...base,
    nats: { servers: ['nats://10.0.0.5:4222'], domain: 'hub' },
  });
  t.deepEqual(withDomain.nats, { servers: ['nats://10.0.0.5:4222'], domain: 'hub' });
  // Enrolling through NATS (doc/nats.md): the shared enrolling seed beside the peer's own.
  const enrolling = parsePeerLinkConfig({
    ...base,
    enroll: { dir: '/e' },
    nats: { servers: ['nats://10.0.0.5:4222'], nkey: '/e/peer.nk', enrollNkey: '/usr/share/enroll.nk' },
  });
  t.deepEqual(enrolling.nats, {
    servers: ['nats://10.0.0.5:4222'],
    nkey: '/e/peer.nk',
    enrollNkey: '/usr/share/enroll.nk',
  });
  for (const [nats, extra, key] of [
    [{ servers: [] }, {}, 'nats.servers'],
    [{ servers: ['10.0.0.5:4222'] }, {}, 'nats.servers'],
    [{ servers: ['nats://10.0.0.5:4222'], user: 'x' }, {}, 'nats.user'],
    [{ servers: ['nats://10.0.0.5:4222'], nkey: 'peer.nk' }, {}, 'nats.nkey'],
    [{ servers: ['nats://10.0.0.5:4222'], nkey: 7 }, {}, 'nats.nkey'],
    [{ servers: ['nats://10.0.0.5:4222'], domain: 'a.b' }, {}, 'nats.domain'],
    [{ servers: ['nats://10.0.0.5:4222'], domain: '' }, {}, 'nats.domain'],
    ['nats://10.0.0.5:4222', {}, 'nats'],
    [{ servers: ['nats://10.0.0.5:4222'] }, { broker: '10.0.0.5:7443' }, 'nats'],
    [{ servers: ['nats://10.0.0.5:4222'], enrollNkey: 'enroll.nk' }, {}, 'nats.enrollNkey'],
    [{ servers: ['nats://10.0.0.5:4222'], ca: 'nats-ca.pem' }, {}, 'nats.ca'],
  ] as const) {
    const e = t.throws(() => parsePeerLinkConfig({ ...base, ...extra, nats }));
    t.is((e as { code?: string }).code, 'E_LINK_CONFIG');
    t.true(e?.message.includes(`key ${key}:`), e?.message);
  }
});
