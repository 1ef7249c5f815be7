// A process of simulated peers for `npm run bench -- fleet`: each peer is protocol-complete
// (its own TLS 1.3 connection with its own certificate, the full agent-side command check
// of agent/remote/command-check.ts including chain, audience, time window and a persisted replay
// cache, and a result signed with its own key) but runs no actions: the action is `status`
// and the answer is a fixed health report. Started with a JSON job file as its argument; it
// prints `ready N` on stdout once its peers are connected and runs until killed.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { admitCommand } from '../agent/remote/command-check.ts';
import type { Message } from '../control/wire/protocol.ts';
import { ReplayCache } from '../agent/remote/replay-cache.ts';
import { signResult } from '../control/wire/result.ts';
import { type BrokerClient, connectBroker } from '../control/wire/transport.ts';
import {
  type Certificate,
  type Envelope,
  readCertificates,
  readPrivateKey,
  type SigningKey,
  tlsContextOptions,
} from '../keys/index.ts';

interface Start {
  address: string;
  anchorsPath: string;
  operatorCertPath: string;
  stateDir: string;
  fleet: string;
  group: string;
  peers: Array<{ peerId: string; keyPath: string; certPath: string }>;
}

interface Peer {
  peerId: string;
  key: SigningKey;
  chain: Certificate[];
  replay: ReplayCache;
  client?: BrokerClient;
}

async function start(o: Start): Promise<void> {
  const anchors = await readCertificates(o.anchorsPath);
  const operator = (await readCertificates(o.operatorCertPath))[0] as Certificate;
  // The membership of the bench group, as a peer's membership store would hold it.
  const groups = new Map<string, Certificate>([[o.group, operator]]);
  const peers: Peer[] = [];
  for (const p of o.peers) {
    const dir = join(o.stateDir, p.peerId);
    await mkdir(dir, { recursive: true });
    const replay = new ReplayCache(dir);
    await replay.load();
    peers.push({
      peerId: p.peerId,
      key: await readPrivateKey(p.keyPath),
      chain: await readCertificates(p.certPath),
      replay,
    });
  }
  let connected = 0;
  // Connect a few at a time: a thousand simultaneous handshakes only measure the accept queue.
  const batch = 16;
  for (let i = 0; i < peers.length; i += batch) {
    await Promise.all(
      peers.slice(i, i + batch).map(async (peer, j) => {
        const p = o.peers[i + j] as Start['peers'][number];
        let queue = Promise.resolve();
        const onMessage = (m: Message): void => {
          if (m.kind !== 'command-deliver') return;
          queue = queue
            .then(() => answer(peer, m, anchors, groups, o.fleet))
            .catch((e: unknown) => {
              process.stderr.write(`${peer.peerId}: ${(e as Error).message}\n`);
            });
        };
        peer.client = await connectBroker({
          address: o.address,
          tls: tlsContextOptions({ keyPath: p.keyPath, certPath: p.certPath, anchors }),
          role: 'peer',
          onMessage,
          timeoutMs: 60_000,
        });
        connected++;
      }),
    );
  }
  process.stdout.write(`ready ${connected}\n`);
}

async function answer(
  peer: Peer,
  m: Message,
  anchors: Certificate[],
  groups: Map<string, Certificate>,
  fleet: string,
): Promise<void> {
  const startedAt = new Date().toISOString();
  const c = await admitCommand(m.command as Envelope, {
    anchors,
    crls: [],
    fleet,
    peerId: peer.peerId,
    peerChain: peer.chain,
    groups,
    replay: peer.replay,
  });
  const result = signResult(
    {
      v: 1,
      command: c.payload.id,
      commandDigest: c.digest,
      peer: peer.peerId,
      status: 'ok',
      output: { health: 'ok' },
      startedAt,
      finishedAt: new Date().toISOString(),
    },
    peer.key,
    peer.chain,
  );
  peer.client?.send('result', { jobId: m.jobId, result, outcome: 'ok' });
}

// SIGTERM ends the process through exit(), so `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));
const job = JSON.parse(await readFile(process.argv[2] as string, 'utf8')) as Start;
await start(job);
