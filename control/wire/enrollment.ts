// Enrollment, like Salt's key acceptance: a peer without a certificate sends a request
// signed by the key it wants certified (proof of possession; there is no chain yet). The
// broker checks the signature and keeps the request pending under its fingerprint
// (sha256 of the raw public key); an operator compares the fingerprint out of band and
// issues the certificate; the broker only checks that certificate matches the request
// before handing it to the peer. Format: doc/protocol.md "Enrollment request".
import { createHash } from 'node:crypto';
import { rawPublicKey } from '../../keys/index.ts';
import {
  type Certificate,
  type Crl,
  canonicalJson,
  type Envelope,
  type SignatureAlgorithm,
  type SigningKey,
  sign,
  verify,
  verifyChain,
} from '../../keys/index.ts';
import { ControlError } from './control-error.ts';
import { MAX_TOKEN_BYTES } from './enroll-token.ts';
import { isId } from './protocol.ts';

export const ENROLL_CONTEXT = 'milkyway/v1/enroll';
/** How far in the future or past a request's `created` may be. */
export const ENROLL_MAX_AGE_MS = 24 * 3600 * 1000;
const ALGORITHMS: readonly SignatureAlgorithm[] = ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87'];
const MAX_LABELS = 32;
/** A NATS nkey user public key: `U`, then base32 of the rest (nats-credentials.ts has the seed). */
const NKEY_USER_RE = /^U[A-Z2-7]{55}$/;
/** Largest `facts` object (JSON bytes) a request may carry. */
export const MAX_FACTS_BYTES = 16_384;

export interface EnrollmentPayload {
  peerId: string;
  name: string;
  algorithm: SignatureAlgorithm;
  /** base64 raw FIPS 204 public key. */
  publicKey: string;
  /** base64 ML-KEM-768 public key (1184 bytes) for sealed secrets. */
  kemPublicKey: string;
  labels: Record<string, string>;
  created: string;
  /** What the machine reports about itself (hostname, arch, addresses …), shown to the operator. */
  facts?: Record<string, unknown>;
  /** An operator-signed enrollment token (control/wire/enroll-token.ts), for `mway peers autosign`. */
  token?: Envelope;
  /**
   * The machine's NATS nkey public key (`U…`) in NATS mode: signed with the rest, so the users
   * the servers admit can be derived from accepted requests (doc/nats.md).
   */
  natsKey?: string;
}

export interface EnrollmentRequest {
  v: 1;
  type: 'enroll-request';
  payload: EnrollmentPayload;
  sig: string;
}

export interface CheckedEnrollment {
  payload: EnrollmentPayload;
  /** sha256 of the raw public key, hex: what `mway peers pending` shows. */
  fingerprint: string;
  /** Stable request id: the first 32 hex digits of the fingerprint. */
  requestId: string;
  publicKey: Uint8Array;
  kemPublicKey: Uint8Array;
}

export function keyFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

/** Signs an enrollment request with the key the peer wants certified. */
export function createEnrollmentRequest(o: {
  key: SigningKey;
  kemPublicKey: Uint8Array;
  peerId: string;
  name?: string;
  labels?: Record<string, string>;
  facts?: Record<string, unknown>;
  token?: Envelope;
  natsKey?: string;
  now?: Date;
}): EnrollmentRequest {
  const payload: EnrollmentPayload = {
    peerId: o.peerId,
    name: o.name ?? o.peerId,
    algorithm: o.key.algorithm,
    publicKey: Buffer.from(rawPublicKey(o.key.publicKey)).toString('base64'),
    kemPublicKey: Buffer.from(o.kemPublicKey).toString('base64'),
    labels: o.labels ?? {},
    created: (o.now ?? new Date()).toISOString(),
    ...(o.facts === undefined ? {} : { facts: o.facts }),
    ...(o.token === undefined ? {} : { token: o.token }),
    ...(o.natsKey === undefined ? {} : { natsKey: o.natsKey }),
  };
  const sig = sign(o.key, canonicalJson(payload), ENROLL_CONTEXT);
  return { v: 1, type: 'enroll-request', payload, sig: Buffer.from(sig).toString('base64') };
}

/**
 * Whether a stored request can no longer be accepted: `mway peers accept` checks it against
 * the current time, so once its signed `created` is more than ENROLL_MAX_AGE_MS in the past
 * it is refused (`E_ENROLL_INVALID`). Unreadable requests count as stale too.
 */
export function enrollmentStale(request: unknown, now: Date): boolean {
  const created = (request as { payload?: { created?: unknown } } | null)?.payload?.created;
  const t = typeof created === 'string' ? Date.parse(created) : Number.NaN;
  return Number.isNaN(t) || now.getTime() - t > ENROLL_MAX_AGE_MS;
}

function bad(message: string, path?: string): ControlError {
  return new ControlError('E_ENROLL_INVALID', message, path === undefined ? {} : { path });
}

const b64 = (s: unknown, field: string): Uint8Array => {
  if (typeof s !== 'string' || s.length > 16_384 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw bad(`Enrollment request: ${field} is not base64`, field);
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
};

/** Absent, or a plain object whose JSON is at most `max` bytes long. */
const optionalObjectWithin = (x: unknown, max: number): boolean =>
  x === undefined ||
  (typeof x === 'object' && x !== null && !Array.isArray(x) && JSON.stringify(x).length <= max);

/** Checks shape, time and proof of possession of an untrusted request. */
export function checkEnrollmentRequest(value: unknown, now: Date = new Date()): CheckedEnrollment {
  if (typeof value !== 'object' || value === null) throw bad('Enrollment request is not an object');
  const r = value as Record<string, unknown>;
  if (r.v !== 1 || r.type !== 'enroll-request')
    throw bad('Enrollment request has the wrong v or type', 'type');
  const p = r.payload as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null) throw bad('Enrollment request has no payload', 'payload');
  const keys = Object.keys(p)
    .filter((k) => k !== 'facts' && k !== 'token' && k !== 'natsKey')
    .sort()
    .join(',');
  if (keys !== 'algorithm,created,kemPublicKey,labels,name,peerId,publicKey') {
    throw bad(`Enrollment request payload has fields ${keys}`, 'payload');
  }
  if (!optionalObjectWithin(p.facts, MAX_FACTS_BYTES)) {
    throw bad(
      `Enrollment request: facts must be an object of at most ${MAX_FACTS_BYTES} bytes`,
      'payload.facts',
    );
  }
  if (!optionalObjectWithin(p.token, MAX_TOKEN_BYTES)) {
    throw bad(
      `Enrollment request: token must be an envelope of at most ${MAX_TOKEN_BYTES} bytes`,
      'payload.token',
    );
  }
  if (p.natsKey !== undefined && !(typeof p.natsKey === 'string' && NKEY_USER_RE.test(p.natsKey))) {
    throw bad(
      'Enrollment request: natsKey is not an nkey user public key (U and 55 base32 characters)',
      'payload.natsKey',
    );
  }
  if (!isId(p.peerId)) throw bad('Enrollment request: peerId is not a valid id', 'payload.peerId');
  if (typeof p.name !== 'string' || p.name.length === 0 || p.name.length > 128) {
    throw bad('Enrollment request: name is empty or longer than 128', 'payload.name');
  }
  if (!ALGORITHMS.includes(p.algorithm as SignatureAlgorithm)) {
    throw bad(`Enrollment request: algorithm ${String(p.algorithm)} is not ML-DSA`, 'payload.algorithm');
  }
  const labels = p.labels as Record<string, unknown> | null;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw bad('Enrollment request: labels is not an object', 'payload.labels');
  }
  const entries = Object.entries(labels);
  if (
    entries.length > MAX_LABELS ||
    entries.some(([k, v]) => !isId(k) || typeof v !== 'string' || v.length > 256)
  ) {
    throw bad('Enrollment request: labels must be at most 32 id=string pairs', 'payload.labels');
  }
  const created = typeof p.created === 'string' ? Date.parse(p.created) : Number.NaN;
  if (Number.isNaN(created) || Math.abs(now.getTime() - created) > ENROLL_MAX_AGE_MS) {
    throw bad('Enrollment request: created is not a time within a day of now', 'payload.created');
  }
  const publicKey = b64(p.publicKey, 'payload.publicKey');
  const kemPublicKey = b64(p.kemPublicKey, 'payload.kemPublicKey');
  if (kemPublicKey.length !== 1184)
    throw bad('Enrollment request: kemPublicKey is not 1184 bytes', 'payload.kemPublicKey');
  const sig = b64(r.sig, 'sig');
  const payload = p as unknown as EnrollmentPayload;
  if (!verify(payload.algorithm, publicKey, canonicalJson(payload), sig, ENROLL_CONTEXT)) {
    throw new ControlError(
      'E_ENROLL_SIGNATURE',
      `Enrollment request of ${payload.peerId}: signature does not verify`,
    );
  }
  const fingerprint = keyFingerprint(publicKey);
  return { payload, fingerprint, requestId: fingerprint.slice(0, 32), publicKey, kemPublicKey };
}

/**
 * Checks that a certificate an operator issued answers the request: chains to the anchors,
 * role peer, same signing key, same KEM key, same peer id.
 */
export function checkIssuedCertificate(
  request: CheckedEnrollment,
  chain: readonly Certificate[],
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[] },
): Certificate {
  let leaf: Certificate;
  try {
    leaf = verifyChain(chain, {
      anchors: o.anchors,
      roles: ['peer'],
      ...(o.crls === undefined ? {} : { crls: o.crls }),
    });
  } catch (e) {
    throw new ControlError(
      'E_ENROLL_CERT',
      `Certificate for ${request.payload.peerId} is not acceptable: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const same = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
    a !== undefined && a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
  if (!same(leaf.publicKey, request.publicKey)) {
    throw new ControlError(
      'E_ENROLL_CERT',
      `Certificate for ${request.payload.peerId} is for another key than the request`,
    );
  }
  if (!same(leaf.kemPublicKey, request.kemPublicKey)) {
    throw new ControlError(
      'E_ENROLL_CERT',
      `Certificate for ${request.payload.peerId} carries another KEM key than the request`,
    );
  }
  // The peer id the machine asked for is a suggestion (one image serves many servers, so it
  // may be a key-derived name): the operator's certificate decides which id it gets.
  if (!isId(leaf.peerId)) {
    throw new ControlError('E_ENROLL_CERT', `Certificate for ${request.payload.peerId} has no valid peer id`);
  }
  return leaf;
}
