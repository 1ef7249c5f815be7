// NATS users bound to our PKI by their owners' signatures (doc/nats.md, "Credentials from our
// PKI"). nats-server 2.9 checks an Ed25519 nkey over its nonce and knows nothing of ML-DSA (an
// auth callout needs 2.10), so the servers need each user's public nkey. That key cannot be
// computed from a certificate (anything derived from public data is known to everyone), so its
// owner says which one is its own: a `nats-user` envelope, signed by the key of the certificate
// it names — a peer's, the broker's, an operator's (who reads the audit stream as an auditor).
// An operator with the `enroll` action also binds the image's shared enrolling nkey. Who a
// binding makes a user of comes from the signing certificate alone (its role, its peer id or
// name), never from the file: a binding for a peer id can only come from that peer's key.
// Each is checked now, against the broker config's anchors and CRLs: a revoked or expired
// certificate, a chain to no anchor, a tampered file each leave that user out.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, readRegularFile } from '../../common/index.ts';
import {
  type Certificate,
  type Crl,
  type Envelope,
  type SigningKey,
  signEnvelope,
  verifyEnvelope,
} from '../../keys/index.ts';
import { isId, type NatsRole, scopeHasAction, signingChain } from '../wire/index.ts';
import type { PeerRow } from './broker-db.ts';
import { BrokerError } from './broker-error.ts';
import type { NatsUsers } from './nats-users.ts';

/** `self`: the signer's own login; `enroll`: the shared enrolling user (operators only). */
export type NatsBindingFor = 'self' | 'enroll';

export interface NatsBindingPayload {
  v: 1;
  nkey: string;
  for: NatsBindingFor;
}

const NKEY_RE = /^U[A-Z2-7]{55}$/;
/** A binding is one small envelope with a leaf and an issuer certificate. */
const MAX_BINDING_BYTES = 256 * 1024;

export function signNatsBinding(o: {
  nkey: string;
  for?: NatsBindingFor;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date;
}): Envelope {
  if (!NKEY_RE.test(o.nkey))
    throw new BrokerError(
      'E_CONFIG',
      `${o.nkey} is not an nkey user public key (U and 55 base32 characters)`,
    );
  const payload: NatsBindingPayload = { v: 1, nkey: o.nkey, for: o.for ?? 'self' };
  return signEnvelope({
    type: 'nats-user',
    payload,
    key: o.key,
    chain: signingChain(o.chain),
    ...(o.now === undefined ? {} : { now: o.now }),
  });
}

export interface NatsBinding {
  /** Which user it makes: from the signer's certificate. */
  user: NatsRole;
  nkey: string;
  /** The signing certificate's fingerprint. */
  fingerprint: string;
}

function bad(message: string): never {
  throw new BrokerError('E_CONFIG', `Not a NATS binding: ${message}`);
}

function parsePayload(p: unknown): NatsBindingPayload {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) bad('payload is not an object');
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['v', 'nkey', 'for'].includes(k)) bad(`unknown field ${JSON.stringify(k)}`);
  if (o.v !== 1) bad('version is not 1');
  if (typeof o.nkey !== 'string' || !NKEY_RE.test(o.nkey)) bad('nkey is not an nkey user public key');
  if (o.for !== 'self' && o.for !== 'enroll') bad('for is neither "self" nor "enroll"');
  return o as unknown as NatsBindingPayload;
}

/** Verifies one binding (chain, validity at `at`, CRLs, role) and says whose user it is. */
export function verifyNatsBinding(
  input: Envelope | string | Uint8Array,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): NatsBinding {
  const v = verifyEnvelope(input, { type: 'nats-user', anchors: o.anchors, crls: o.crls, at: o.at });
  if (v.signers.length !== 1) bad(`${v.signers.length} signatures, expected 1`);
  const payload = parsePayload(v.payload);
  const c = v.signer;
  const user = ((): NatsRole => {
    if (payload.for === 'enroll') {
      if (c.role !== 'operator' || !scopeHasAction(c, 'enroll'))
        bad(
          `the enrolling user is bound by an operator with the enroll action, not by ${c.role} ${c.subject}`,
        );
      return { role: 'enroll' };
    }
    if (c.role === 'peer') {
      if (c.peerId === undefined || !isId(c.peerId)) bad(`peer certificate ${c.subject} names no peer id`);
      return { role: 'peer', peerId: c.peerId };
    }
    if (c.role === 'broker') return { role: 'broker' };
    if (c.role === 'operator') {
      if (!isId(c.subject)) bad(`operator name ${JSON.stringify(c.subject)} is not an id`);
      return { role: 'auditor', name: c.subject };
    }
    return bad(`a ${c.role} certificate binds no NATS user`);
  })();
  return { user, nkey: payload.nkey, fingerprint: c.fingerprint };
}

/** Every `*.json` file in `dir`, sorted by name (the bindings folder of doc/nats.md). */
export async function readNatsBindings(dir: string): Promise<Array<{ source: string; bytes: Uint8Array }>> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    throw new BrokerError('E_CONFIG', `Cannot read NATS bindings folder ${dir}: ${errorMessage(e)}`, {
      path: dir,
      cause: e,
    });
  }
  const out = [];
  for (const n of names) {
    const source = join(dir, n);
    out.push({
      source,
      bytes: await readRegularFile(source, { what: 'NATS binding', maxBytes: MAX_BINDING_BYTES }),
    });
  }
  return out;
}

function userKey(u: NatsRole): string {
  if (u.role === 'peer') return `peer ${u.peerId}`;
  if (u.role === 'auditor') return `auditor ${u.name}`;
  return u.role;
}

export interface BoundNatsUsers {
  broker?: string;
  enroll?: string;
  peers: Record<string, string>;
  auditors: Record<string, string>;
  /** Bindings left out, and why. */
  skipped: Array<{ source: string; reason: string }>;
}

/**
 * The users the bindings make. Each is verified now; a peer the broker's database knows must be
 * bound by its current certificate (a reinstall under the same id replaces the user). Two valid
 * bindings that give one user different nkeys leave that user out: which one is meant is for
 * the operator to say, by revoking the other certificate.
 */
export function boundNatsUsers(
  files: ReadonlyArray<{ source: string; bytes: Uint8Array }>,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date; peers?: readonly PeerRow[] },
): BoundNatsUsers {
  const current = new Map((o.peers ?? []).map((p) => [p.peerId, p.fingerprint]));
  const out: BoundNatsUsers = { peers: {}, auditors: {}, skipped: [] };
  const found = new Map<string, Array<{ source: string; b: NatsBinding }>>();
  for (const f of files) {
    try {
      const b = verifyNatsBinding(f.bytes, o);
      if (b.user.role === 'peer') {
        const fp = current.get(b.user.peerId);
        if (fp !== undefined && fp !== b.fingerprint)
          throw new BrokerError('E_CONFIG', `${b.user.peerId} holds another certificate now`);
      }
      const k = userKey(b.user);
      found.set(k, [...(found.get(k) ?? []), { source: f.source, b }]);
    } catch (e) {
      out.skipped.push({ source: f.source, reason: errorMessage(e) });
    }
  }
  for (const [k, list] of found) {
    const keys = new Set(list.map((x) => x.b.nkey));
    if (keys.size > 1) {
      for (const x of list)
        out.skipped.push({
          source: x.source,
          reason: `${k} is bound to ${keys.size} different nkeys (${list.map((y) => y.source).join(', ')}); revoke the certificates that should not connect`,
        });
      continue;
    }
    const { user, nkey } = (list[0] as { b: NatsBinding }).b;
    if (user.role === 'peer') out.peers[user.peerId] = nkey;
    else if (user.role === 'auditor') out.auditors[user.name] = nkey;
    else if (user.role === 'broker') out.broker = nkey;
    else out.enroll = nkey;
  }
  return out;
}

/**
 * The users file (if any) with the bound users added. A user in both with different nkeys is
 * refused (`E_CONFIG`), as is a block without a broker.
 */
export function withBound(users: NatsUsers | undefined, bound: BoundNatsUsers): NatsUsers {
  const clash = (what: string, a: string | undefined, b: string | undefined) => {
    if (a !== undefined && b !== undefined && a !== b)
      throw new BrokerError(
        'E_CONFIG',
        `NATS users: ${what} has nkey ${a} in the users file and ${b} in its signed binding; remove one`,
      );
  };
  clash('the broker', users?.broker, bound.broker);
  clash('the enrolling user', users?.enroll, bound.enroll);
  for (const [id, k] of Object.entries(bound.peers)) clash(`peer ${id}`, users?.peers[id], k);
  for (const [id, k] of Object.entries(bound.auditors)) clash(`auditor ${id}`, users?.auditors[id], k);
  const broker = users?.broker ?? bound.broker;
  if (broker === undefined)
    throw new BrokerError(
      'E_CONFIG',
      'NATS users: no broker user (sign its binding: milkywaysrvd nats-user --key <broker key> --cert <broker cert> --binding FILE)',
    );
  const enroll = users?.enroll ?? bound.enroll;
  return {
    broker,
    peers: { ...users?.peers, ...bound.peers },
    auditors: { ...users?.auditors, ...bound.auditors },
    ...(enroll === undefined ? {} : { enroll }),
  };
}
