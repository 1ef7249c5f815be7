// A NATS server that duplicates, drops and reorders messages (test/control/nats-proxy.ts, in
// front of one node of a real 3-node cluster) between a peer and the cluster, both ways: every
// command still runs exactly once, in order, and every answer the relay reads is the peer's own
// signed result, bound to its command.
import test from 'ava';
import { NatsRelay } from '../../../control/broker/index.ts';
import { type Audience, buildCommand, envelopeDigest, verifyResult } from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';
import { startNatsProxy } from '../nats-proxy.ts';

const pkiP = makeFleetPki();

test('through a server that duplicates, drops and reorders messages each command runs once and every answer is signed and bound', async (t) => {
  const p = await pkiP;
  const cluster = await startNatsCluster(t, 3);
  const relay = await NatsRelay.open({ servers: cluster.urls });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const proxy = await startNatsProxy(t, cluster.urls[0] as string);
  const rec = recorder();
  await natsPeerLink(t, p, p.p1, { servers: [proxy.url] }, { rec });
  const audience: Audience = { fleet: 'prod', target: 'peer:p1', groups: [], peers: ['p1'] };
  const names = Array.from({ length: 10 }, (_, i) => `s${i}`);
  const envs = names.map((service, i) =>
    buildCommand({
      action: 'service.restart',
      args: { service },
      audience,
      seq: i + 1,
      key: p.admin.key,
      chain: p.admin.chain,
    }),
  );
  const expires = new Date(Date.now() + 600_000).toISOString();
  for (const [i, env] of envs.entries()) await relay.deliver('p1', `job-${i}`, env, expires);
  for (const [i, env] of envs.entries()) {
    const m = await relay.answer('p1', `job-${i}`, 120_000);
    t.truthy(m, `job-${i} answered`);
    const r = verifyResult(m?.result as Envelope, {
      anchors: [p.root.cert],
      expect: { command: (env.payload as { id: string }).id, commandDigest: envelopeDigest(env) },
    });
    t.is(r.signer.peerId, 'p1');
    t.is(r.payload.status, 'ok', `job-${i}`);
  }
  t.deepEqual(
    rec.calls,
    names.map((n) => `restart ${n}`),
    'each command ran once, in order',
  );
  for (const [way, c] of Object.entries({ toClient: proxy.toClient, toServer: proxy.toServer })) {
    t.log(way, c);
    t.true(c.duplicated > 0 && c.dropped > 0 && c.reordered > 0, `${way}: ${JSON.stringify(c)}`);
  }
});
