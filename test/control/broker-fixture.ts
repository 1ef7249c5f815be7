// A small user PKI for the broker tests: one user root with a broker, an operator and N
// peers, written to a temporary directory (real keys/ identities, nothing mocked).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Certificate,
  newIdentity,
  readCertificates,
  readPrivateKey,
  type SigningKey,
  tlsContextOptions,
} from '../../keys/index.ts';

export interface Ident {
  name: string;
  key: SigningKey;
  cert: Certificate;
  chain: Certificate[];
  keyPath: string;
  certPath: string;
  kemKeyPath?: string;
}

export interface FleetPki {
  dir: string;
  root: Ident;
  broker: Ident;
  operator: Ident;
  peers: Ident[];
  anchors: Certificate[];
}

async function load(
  name: string,
  r: { keyPath: string; certPath: string; kemKeyPath?: string },
): Promise<Ident> {
  const chain = await readCertificates(r.certPath);
  const id: Ident = {
    name,
    key: await readPrivateKey(r.keyPath),
    cert: chain[0] as Certificate,
    chain,
    keyPath: r.keyPath,
    certPath: r.certPath,
  };
  if (r.kemKeyPath !== undefined) id.kemKeyPath = r.kemKeyPath;
  return id;
}

export async function makeFleetPki(peers = 2, dir?: string): Promise<FleetPki> {
  const out = dir ?? (await mkdtemp(join(tmpdir(), 'mway-fleet-')));
  const root = await load('root', await newIdentity({ role: 'user-root', name: 'root', outDir: out }));
  const under = { outDir: out, issuerKey: root.key, issuerCert: root.cert };
  const broker = await load(
    'broker',
    await newIdentity({ ...under, role: 'broker', name: 'broker', dnsNames: ['localhost'] }),
  );
  const operator = await load(
    'op',
    await newIdentity({ ...under, role: 'operator', name: 'op', groups: ['*'], actions: ['*'] }),
  );
  const list: Ident[] = [];
  for (let i = 1; i <= peers; i++) {
    list.push(
      await load(
        `peer${i}`,
        await newIdentity({ ...under, role: 'peer', name: `peer${i}`, peerId: `peer-${i}` }),
      ),
    );
  }
  return { dir: out, root, broker, operator, peers: list, anchors: [root.cert] };
}

export function tlsOf(pki: FleetPki, id: Ident): ReturnType<typeof tlsContextOptions> {
  return tlsContextOptions({ keyPath: id.keyPath, certPath: id.certPath, anchors: pki.anchors });
}

import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { Broker, type BrokerOptions } from '../../control/broker/broker.ts';
import type { Message } from '../../control/wire/protocol.ts';
import { type BrokerClient, connectBroker } from '../../control/wire/transport.ts';
import { type Envelope, signEnvelope } from '../../keys/index.ts';

export async function startBroker(
  t: ExecutionContext,
  pki: FleetPki,
  o: Partial<BrokerOptions> & { dbPath: string },
): Promise<Broker> {
  const b = await Broker.start({
    tls: tlsOf(pki, pki.broker),
    certificate: pki.broker.cert,
    anchors: pki.anchors,
    expirySweepMs: 100,
    ...o,
  });
  t.teardown(() => b.close());
  return b;
}

/** A connected client that records every unsolicited message it gets. */
export interface TestClient {
  c: BrokerClient;
  got: Message[];
  /** Waits (bounded) until `pred` matches a received message. */
  next(pred: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
}

export async function client(
  t: ExecutionContext,
  pki: FleetPki,
  id: Ident,
  port: number,
  role: 'peer' | 'operator',
): Promise<TestClient> {
  const got: Message[] = [];
  const waiters: Array<{ pred: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  const c = await connectBroker({
    address: `127.0.0.1:${port}`,
    tls: tlsOf(pki, id),
    role,
    onMessage: (m) => {
      got.push(m);
      for (const w of [...waiters]) {
        if (w.pred(m)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    },
  });
  t.teardown(() => c.close());
  return {
    c,
    got,
    next: (pred, timeoutMs = 10_000) => {
      const seen = got.find(pred);
      if (seen !== undefined) {
        got.splice(got.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise<Message>((resolve, reject) => {
        const w = {
          pred,
          resolve: (m: Message) => {
            clearTimeout(timer);
            got.splice(got.indexOf(m), 1);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error('timed out waiting for a message'));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

/** A signed command envelope (the broker does not read its payload; agents do). */
export function command(pki: FleetPki, action = 'status'): { jobId: string; envelope: Envelope } {
  const jobId = randomBytes(16).toString('hex');
  return {
    jobId,
    envelope: signEnvelope({
      type: 'command',
      payload: { id: jobId, action },
      key: pki.operator.key,
      chain: pki.operator.chain,
    }),
  };
}

export function result(id: Ident, jobId: string): Envelope {
  return signEnvelope({
    type: 'result',
    payload: { commandId: jobId, status: 'ok' },
    key: id.key,
    chain: id.chain,
  });
}
