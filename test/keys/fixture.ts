// A small PKI for the keys/ tests: one user root with peer, operator, broker and a peer issuer
// (with a peer of its own), one vendor root with a vendor, each written to a temporary directory once per test file.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Certificate,
  newIdentity,
  readCertificates,
  readKemPrivateKey,
  readPrivateKey,
  type SigningKey,
} from '../../keys/index.ts';

export interface Id {
  key: SigningKey;
  chain: Certificate[];
  cert: Certificate;
  keyPath: string;
  certPath: string;
  kemKeyPath?: string;
}

export interface Pki {
  dir: string;
  root: Id;
  peer: Id;
  operator: Id;
  broker: Id;
  vendorRoot: Id;
  vendor: Id;
  /** The user root's peer issuer (CA, pathLen 0) and a peer it issued (chain peer → issuer). */
  peerIssuer: Id;
  issuedPeer: Id;
}

async function load(r: { keyPath: string; certPath: string; kemKeyPath?: string }): Promise<Id> {
  const chain = await readCertificates(r.certPath);
  const id: Id = {
    key: await readPrivateKey(r.keyPath),
    chain,
    cert: chain[0] as Certificate,
    keyPath: r.keyPath,
    certPath: r.certPath,
  };
  if (r.kemKeyPath !== undefined) {
    await readKemPrivateKey(r.kemKeyPath);
    id.kemKeyPath = r.kemKeyPath;
  }
  return id;
}

export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-keys-'));
  const root = await load(await newIdentity({ role: 'user-root', name: 'root', outDir: dir }));
  const under = { outDir: dir, issuerKey: root.key, issuerCert: root.cert };
  const peer = await load(
    await newIdentity({ ...under, role: 'peer', name: 'peer1', peerId: 'peer-1', dnsNames: ['peer1.local'] }),
  );
  const operator = await load(
    await newIdentity({
      ...under,
      role: 'operator',
      name: 'op',
      groups: ['web'],
      actions: ['restart', 'logs'],
    }),
  );
  const broker = await load(
    await newIdentity({ ...under, role: 'broker', name: 'broker', dnsNames: ['localhost'] }),
  );
  const vendorRoot = await load(await newIdentity({ role: 'vendor-root', name: 'vroot', outDir: dir }));
  const vendor = await load(
    await newIdentity({
      role: 'vendor',
      name: 'vendor',
      outDir: dir,
      issuerKey: vendorRoot.key,
      issuerCert: vendorRoot.cert,
    }),
  );
  const peerIssuer = await load(await newIdentity({ ...under, role: 'peer-issuer', name: 'peer-issuer' }));
  const issuedPeer = await load(
    await newIdentity({
      role: 'peer',
      name: 'peer2',
      peerId: 'peer-2',
      outDir: dir,
      issuerKey: peerIssuer.key,
      issuerCert: peerIssuer.cert,
    }),
  );
  return { dir, root, peer, operator, broker, vendorRoot, vendor, peerIssuer, issuedPeer };
}

/** Runs `f` and returns the KeysError code it throws (or 'no error'). */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}

export async function codeOfAsync(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}
