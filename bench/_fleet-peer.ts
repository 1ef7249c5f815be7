// A process of simulated peers for `npm run bench -- fleet`: each peer is protocol-complete
// (its own TLS 1.3 connection with its own certificate, the full agent-side command check
// of agent/remote/command-check.ts including chain, audience, time window and a persisted replay
// cache, and a result signed with its own key) but runs no actions: the action is `status`
// and the answer is a fixed health report. Started with a JSON job file as its argument; it
// prints `ready N` on stdout once its peers are connected and runs until killed.
// With `nats` in the job each peer is a NATS mode peer instead (`--transport nats`): its own NATS
// connection and mailbox reader (control/wire/nats-peer.ts, cursor file in its state folder), a
// signed status on connect (so milkywaysrvd knows it), and signed memberships verified, held and
// acked with a signed ack as agent/remote/peer-executor.ts does, so the broker may use the group
// subject; commands are checked against the memberships it holds.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { admitCommand } from '../agent/remote/command-check.ts';
import type { Message } from '../control/wire/protocol.ts';
import { ReplayCache } from '../agent/remote/replay-cache.ts';
import { connectNatsPeer, type PeerSession } from '../control/wire/nats-peer.ts';
import { envelopeDigest } from '../control/wire/command.ts';
import { verifyMembership } from '../control/wire/membership.ts';
import { signResult, signStatus } from '../control/wire/result.ts';
import { connectBroker } from '../control/wire/transport.ts';
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
  /** NATS mode: the cluster's client URLs (each peer connects to one, round robin). */
  nats?: { servers: string[] };
  /** Over TLS too, send a signed status once connected, as an agent does (`npm run bench -- cli`'s `mway status`). */
  status?: boolean;
}

interface Peer {
  peerId: string;
  key: SigningKey;
  chain: Certificate[];
  replay: ReplayCache;
  /** The groups this peer holds, by the operator certificate that signed the membership. */
  groups: Map<string, Certificate>;
  client?: PeerSession;
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
      // Over TLS the bench group's membership is taken as held (the broker delivers per peer);
      // over NATS a peer holds what it verified.
      groups: o.nats === undefined ? groups : new Map(),
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
          const work =
            m.kind === 'command-deliver'
              ? () => answer(peer, m, anchors, o.fleet)
              : m.kind === 'membership-deliver'
                ? () => hold(peer, m, anchors, o.fleet)
                : undefined;
          if (work === undefined) return;
          queue = queue.then(work).catch((e: unknown) => {
            process.stderr.write(`${peer.peerId}: ${(e as Error).message}\n`);
          });
        };
        if (o.nats === undefined) {
          peer.client = await connectBroker({
            address: o.address,
            tls: tlsContextOptions({ keyPath: p.keyPath, certPath: p.certPath, anchors }),
            role: 'peer',
            onMessage,
            timeoutMs: 60_000,
          });
          if (o.status === true) peer.client.send('status', { status: status(peer, o.fleet) });
        } else {
          const servers = o.nats.servers;
          peer.client = await connectNatsPeer({
            servers: [servers[(i + j) % servers.length] as string],
            peerId: peer.peerId,
            cursorFile: join(o.stateDir, peer.peerId, 'nats-cursor.json'),
            onMessage,
            groups: () => [...peer.groups.keys()],
            log: (level, msg) => {
              if (level !== 'info') process.stderr.write(`${peer.peerId}: ${msg}\n`);
            },
          });
          peer.client.send('status', { status: status(peer, o.fleet) });
        }
        connected++;
      }),
    );
  }
  process.stdout.write(`ready ${connected}\n`);
}

function status(peer: Peer, fleet: string) {
  return signStatus(
    {
      v: 1,
      peer: peer.peerId,
      fleet,
      at: new Date().toISOString(),
      agent: { health: 'ok', state: 'running' },
      layers: [],
      services: [],
      groups: [...peer.groups.keys()].sort(),
    },
    peer.key,
    peer.chain,
  );
}

/** A membership statement: verified against the anchors and held, answered with a signed ack. */
async function hold(peer: Peer, m: Message, anchors: Certificate[], fleet: string): Promise<void> {
  const startedAt = new Date().toISOString();
  const env = m.membership as Envelope;
  const v = verifyMembership(env, { anchors, fleet, peer: peer.peerId });
  if (v.payload.member) peer.groups.set(v.payload.group, v.signer);
  else peer.groups.delete(v.payload.group);
  const ack = signResult(
    {
      v: 1,
      command: `membership:${v.payload.group}`,
      commandDigest: envelopeDigest(env),
      peer: peer.peerId,
      status: 'ok',
      startedAt,
      finishedAt: new Date().toISOString(),
    },
    peer.key,
    peer.chain,
  );
  peer.client?.send('membership-ack', { group: m.group, op: m.op, ok: true, ack });
}

async function answer(peer: Peer, m: Message, anchors: Certificate[], fleet: string): Promise<void> {
  const startedAt = new Date().toISOString();
  const c = await admitCommand(m.command as Envelope, {
    anchors,
    crls: [],
    fleet,
    peerId: peer.peerId,
    peerChain: peer.chain,
    groups: peer.groups,
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
