// A fleet PKI for the control tests: one user root with operators of different scopes,
// peers, a revoked operator and a revoked peer (one CRL), and a foreign root with its own
// operator. Written once per test file to a temporary directory.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Certificate,
  type Crl,
  issueCrl,
  newIdentity,
  readCertificates,
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

export async function load(r: { keyPath: string; certPath: string; kemKeyPath?: string }): Promise<Id> {
  const chain = await readCertificates(r.certPath);
  return {
    key: await readPrivateKey(r.keyPath),
    chain,
    cert: chain[0] as Certificate,
    keyPath: r.keyPath,
    certPath: r.certPath,
    ...(r.kemKeyPath === undefined ? {} : { kemKeyPath: r.kemKeyPath }),
  };
}

export interface FleetPki {
  dir: string;
  root: Id;
  /** groups web, actions status/service/group. */
  op: Id;
  /** groups *, actions * (not exec). */
  admin: Id;
  /** groups web, actions exec. */
  execOp: Id;
  /** revoked by `crl`. */
  revokedOp: Id;
  p1: Id;
  p2: Id;
  /** revoked by `crl`. */
  revokedPeer: Id;
  foreignOp: Id;
  broker: Id;
  /** The user root's peer issuer (CA, pathLen 0): what `mway peers accept` issues with. */
  peerIssuer: Id;
  crl: Crl;
}

/** One more peer under `pki`'s user root (tests that need more than p1 and p2). */
export async function extraPeer(pki: FleetPki, name: string): Promise<Id> {
  return load(
    await newIdentity({
      outDir: join(pki.dir, 'extra'),
      issuerKey: pki.root.key,
      issuerCert: pki.root.cert,
      role: 'peer',
      name,
      peerId: name,
    }),
  );
}

export async function makeFleetPki(): Promise<FleetPki> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-control-'));
  const root = await load(await newIdentity({ role: 'user-root', name: 'root', outDir: dir }));
  const under = { outDir: dir, issuerKey: root.key, issuerCert: root.cert };
  const operator = async (name: string, groups: string[], actions: string[]) =>
    load(await newIdentity({ ...under, role: 'operator', name, groups, actions }));
  const peer = async (name: string) =>
    load(await newIdentity({ ...under, role: 'peer', name, peerId: name }));
  const op = await operator('op', ['web'], ['status', 'service', 'group']);
  const admin = await operator('admin', ['*'], ['*']);
  const execOp = await operator('execop', ['web'], ['exec']);
  const revokedOp = await operator('revokedop', ['*'], ['*']);
  const p1 = await peer('p1');
  const p2 = await peer('p2');
  const revokedPeer = await peer('p9');
  const broker = await load(
    await newIdentity({ ...under, role: 'broker', name: 'broker', dnsNames: ['localhost'] }),
  );
  const froot = await load(await newIdentity({ role: 'user-root', name: 'froot', outDir: join(dir, 'f') }));
  const foreignOp = await load(
    await newIdentity({
      role: 'operator',
      name: 'fop',
      outDir: join(dir, 'f'),
      issuerKey: froot.key,
      issuerCert: froot.cert,
      groups: ['*'],
      actions: ['*'],
    }),
  );
  const crl = await issueCrl({
    issuerKey: root.key,
    issuerCert: root.cert,
    serials: [revokedOp.cert.serial, revokedPeer.cert.serial],
  });
  // The root's delegation for enrollment: `mway peers accept` signs with it.
  const peerIssuer = await load(await newIdentity({ ...under, role: 'peer-issuer', name: 'peer-issuer' }));
  return { dir, root, op, admin, execOp, revokedOp, p1, p2, revokedPeer, foreignOp, broker, crl, peerIssuer };
}

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
