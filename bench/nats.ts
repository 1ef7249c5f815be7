// `npm run bench -- nats [--rounds=N]`: a command's round trip through NATS mode against a plain
// NATS request/reply of the same sizes, measured in the same run on the same 3-node Debian
// nats-server cluster (127.0.0.1, free ports, R3 streams). Ours: NatsRelay stores the
// operator-signed command in the peer's mailbox (a JetStream publish, acked by a quorum), the
// peer link reads it (STREAM.MSG.GET from its cursor), checks it (chain, scope, audience,
// expiry, replay cache written), runs it against a recording agent, signs the result and stores
// it in MWAY_RES, and the broker side reads it back (followAnswers, as milkywaysrvd does) and
// verifies its signature and binding. Reference: `nc.request()` to a responder that answers at
// once, carrying a payload as large as our command and answering one as large as our result.
// Printed: p50/p99 of each, their ratio, and the servers' CPU per round trip for both.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startPeerLink } from '../agent/remote/peer-link.ts';
import { NatsRelay } from '../control/broker/nats-relay.ts';
import {
  buildCommand,
  connectNats,
  decodeBody,
  envelopeDigest,
  type Message,
  resultSubject,
  verifyResult,
} from '../control/wire/index.ts';
import {
  type Certificate,
  type Envelope,
  newIdentity,
  readCertificates,
  readPrivateKey,
} from '../keys/index.ts';
import { recorder } from '../test/agent/remote/recording-agent.ts';
import { natsCluster } from './_nats-cluster.ts';
import { intFlag } from './_flags.ts';
import { cpuSeconds, percentile } from './_measure.ts';

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 300);
  const warm = Math.min(20, Math.ceil(rounds / 10));
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-nats-'));
  const c = await natsCluster(join(dir, 'nats'), { maxFile: '1GB' });
  const pids = c.pids;
  const serversCpu = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  try {
    const pki = join(dir, 'pki');
    const root = await newIdentity({ role: 'user-root', name: 'root', outDir: pki });
    const rootCert = (await readCertificates(root.certPath))[0] as Certificate;
    const under = { outDir: pki, issuerKey: await readPrivateKey(root.keyPath), issuerCert: rootCert };
    const opId = await newIdentity({ ...under, role: 'operator', name: 'op', groups: ['*'], actions: ['*'] });
    const peerId = await newIdentity({ ...under, role: 'peer', name: 'p1', peerId: 'p1' });
    const opKey = await readPrivateKey(opId.keyPath);
    const opChain = await readCertificates(opId.certPath);

    const relay = await NatsRelay.open({ servers: c.urls });
    await relay.ensureStreams(3);
    const rec = recorder();
    const link = await startPeerLink({
      api: rec.api,
      stateDir: join(dir, 'peer'),
      log: () => {},
      config: {
        nats: { servers: [c.urls[1] as string] },
        fleet: 'bench',
        key: peerId.keyPath,
        cert: peerId.certPath,
        kemKey: peerId.kemKeyPath as string,
        anchors: [root.certPath],
        skewMs: 0,
        maxBackoffMs: 300,
      },
    });

    // The broker side's reader: one subscription-woken pass over MWAY_RES, as milkywaysrvd runs.
    const waiting = new Map<string, (m: Message) => void>();
    const follower = relay.followAnswers((subject, body) => waiting.get(subject)?.(decodeBody(body)));
    const commands: Envelope[] = [];
    for (let i = 0; i < rounds + warm; i++)
      commands.push(
        buildCommand({
          action: 'service.restart',
          args: { service: 'hello' },
          audience: { fleet: 'bench', target: 'peer:p1', groups: [], peers: ['p1'] },
          seq: i + 1,
          key: opKey,
          chain: opChain,
        }),
      );
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    let resultBytes = 0;
    const ours: number[] = [];
    const cpu0 = await serversCpu();
    for (const [i, env] of commands.entries()) {
      const jobId = `job-${i}`;
      const t0 = performance.now();
      const answered = new Promise<Message>((r) => waiting.set(resultSubject('p1', jobId), r));
      await relay.deliver('p1', jobId, env, expiresAt);
      const m = await answered;
      const r = verifyResult(m.result as Envelope, {
        anchors: [rootCert],
        expect: { command: (env.payload as { id: string }).id, commandDigest: envelopeDigest(env) },
      });
      if (r.payload.status !== 'ok') throw new Error(`bench nats: job ${jobId} answered ${r.payload.status}`);
      if (i >= warm) ours.push(performance.now() - t0);
      resultBytes = JSON.stringify(m).length;
    }
    const oursCpu = (await serversCpu()) - cpu0;
    follower.stop();
    await link.stop();
    await relay.close();

    // Reference: plain core-NATS request/reply of the same sizes, client and responder on two
    // different servers as our relay and peer were.
    const commandBytes = JSON.stringify({ kind: 'command-deliver', command: commands[0] }).length;
    const req = new Uint8Array(commandBytes).fill(120);
    const rep = new Uint8Array(resultBytes).fill(121);
    const responder = await connectNats({
      servers: [c.urls[1] as string],
      who: { role: 'broker' },
      name: 'responder',
    });
    const requester = await connectNats({ servers: c.urls, who: { role: 'broker' }, name: 'requester' });
    responder.subscribe('bench.echo', {
      callback: (_e, m) => {
        m.respond(rep);
      },
    });
    await responder.flush();
    const plain: number[] = [];
    const cpu1 = await serversCpu();
    for (let i = 0; i < rounds + warm; i++) {
      const t0 = performance.now();
      const m = await requester.request('bench.echo', req, { timeout: 5000 });
      if (m.data.length !== rep.length) throw new Error('bench nats: short reply');
      if (i >= warm) plain.push(performance.now() - t0);
    }
    const plainCpu = (await serversCpu()) - cpu1;
    // A second reference, to place the gap: one JetStream publish of the command's size, acked
    // once a quorum of the R3 stream stored it (each of our round trips makes two of these).
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    await (await jetstreamManager(requester)).streams.add({
      name: 'BENCH',
      subjects: ['bench.js'],
      num_replicas: 3,
    } as never);
    const js = jetstream(requester);
    const stored: number[] = [];
    for (let i = 0; i < rounds + warm; i++) {
      const t0 = performance.now();
      await js.publish('bench.js', req);
      if (i >= warm) stored.push(performance.now() - t0);
    }
    stored.sort((a, b) => a - b);
    await requester.close();
    await responder.close();

    ours.sort((a, b) => a - b);
    plain.sort((a, b) => a - b);
    const f = (x: number) => x.toFixed(2);
    process.stdout.write(
      [
        `3-node ${(await execa('nats-server', ['--version'], { timeout: 10_000 })).stdout.trim()}, R3, ${rounds} round trips each (${warm} warm-up), command ${commandBytes} B, result ${resultBytes} B`,
        `ours  (relay → JetStream → peer checks, runs, signs → JetStream → verified): p50 ${f(percentile(ours, 50))} ms  p99 ${f(percentile(ours, 99))} ms  servers' CPU ${f((oursCpu * 1000) / (rounds + warm))} ms/round trip`,
        `plain (nc.request → responder → reply, same sizes):                       p50 ${f(percentile(plain, 50))} ms  p99 ${f(percentile(plain, 99))} ms  servers' CPU ${f((plainCpu * 1000) / (rounds + warm))} ms/round trip`,
        `JetStream publish of the command's size, R3 quorum ack:                   p50 ${f(percentile(stored, 50))} ms  p99 ${f(percentile(stored, 99))} ms`,
        `ratio ours/plain: p50 ${f(percentile(ours, 50) / percentile(plain, 50))}x  p99 ${f(percentile(ours, 99) / percentile(plain, 99))}x`,
        '',
      ].join('\n'),
    );
  } finally {
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
