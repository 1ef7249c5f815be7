// A site's leaf node in NATS mode (doc/nats.md, "A leaf node for a site"): a Debian nats-server
// without JetStream of its own, connected as a leaf to the 3-node cluster on 127.0.0.1. A peer
// connected only to the leaf reads its mailbox and stores its results through it; while the
// leaf is down the relay keeps storing on the cluster, and when the leaf returns the peer gets
// exactly what it missed, in order, once.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { NatsRelay } from '../../../control/broker/index.ts';
import { type Audience, buildCommand, type Message, verifyResult } from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster, startNatsLeaf } from '../nats-fixture.ts';

const pkiP = makeFleetPki();

/** doc/nats.md's "A leaf node for a site": its code blocks, in order. */
async function howTo(): Promise<string[]> {
  const md = await readFile(new URL('../../../doc/nats.md', import.meta.url), 'utf8');
  const from = md.indexOf('## A leaf node for a site');
  const section = md.slice(from, md.indexOf('\n## ', from + 1));
  return [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

test('a peer behind a leaf node runs its commands; with the leaf down it catches up on return, in order, once; without nats.domain a peer cannot read and says so', async (t) => {
  const p = await pkiP;
  const [hubLines, siteConf] = await howTo();
  const cluster = await startNatsCluster(t, 3, { domain: 'hub' });
  // The cluster's config carries the how-to's two lines (its ports and store filled in).
  const n1 = await readFile(cluster.confs[0] as string, 'utf8');
  for (const line of (hubLines as string).trim().split('\n')) {
    const pattern = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<[^>]*>/g, '[^ "]+');
    t.regex(n1, new RegExp(`^${pattern}$`, 'm'));
  }
  const leaf = await startNatsLeaf(t, cluster, siteConf as string);
  const relay = await NatsRelay.open({ servers: cluster.urls });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const rec = recorder();
  await natsPeerLink(t, p, p.p1, { servers: [leaf.url], domain: 'hub' }, { rec });
  let seq = 0;
  const audience: Audience = { fleet: 'prod', target: 'peer:p1', groups: [], peers: ['p1'] };
  const cmd = (service: string) =>
    buildCommand({
      action: 'service.restart',
      args: { service },
      audience,
      seq: ++seq,
      key: p.admin.key,
      chain: p.admin.chain,
    });
  const expires = new Date(Date.now() + 600_000).toISOString();
  const ok = (m: Message | undefined) =>
    m !== undefined && verifyResult(m.result as Envelope, { anchors: [p.root.cert] }).payload.status === 'ok';

  await relay.deliver('p1', 'job-1', cmd('first'), expires);
  t.true(ok(await relay.answer('p1', 'job-1', 60_000)), 'answered through the leaf');

  // The site loses its server: the cluster keeps storing the peer's commands.
  await leaf.kill();
  for (const n of ['a', 'b', 'c']) await relay.deliver('p1', `job-${n}`, cmd(n), expires);
  await leaf.start();
  await leaf.connected();
  for (const n of ['a', 'b', 'c']) t.true(ok(await relay.answer('p1', `job-${n}`, 90_000)), `job-${n}`);
  t.deepEqual(rec.calls, ['restart first', 'restart a', 'restart b', 'restart c']);

  // Without nats.domain a peer behind the leaf cannot read its mailbox (the servers refuse
  // JetStream's API across the leaf connection): it says so and keeps trying; nothing runs.
  const logs: string[] = [];
  const rec2 = recorder();
  await natsPeerLink(
    t,
    p,
    p.p2,
    { servers: [leaf.url] },
    { rec: rec2, log: (level, m) => logs.push(`${level}: ${m}`) },
  );
  await relay.deliver(
    'p2',
    'job-p2',
    buildCommand({
      action: 'service.restart',
      args: { service: 'x' },
      audience: { fleet: 'prod', target: 'peer:p2', groups: [], peers: ['p2'] },
      seq: ++seq,
      key: p.admin.key,
      chain: p.admin.chain,
    }),
    expires,
  );
  for (let i = 0; i < 300 && !logs.some((l) => l.includes('cannot read the NATS mailbox')); i++)
    await new Promise((r) => setTimeout(r, 100));
  t.true(
    logs.some(
      (l) =>
        l.startsWith('warn: control: cannot read the NATS mailbox') && l.includes('jetstream is not enabled'),
    ),
    logs.join('\n'),
  );
  t.deepEqual(rec2.calls, []);
});
