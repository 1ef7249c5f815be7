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
