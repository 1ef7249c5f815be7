// Shared types of keys/: algorithms, roles, envelope types, certificates, keys.
// The shapes follow doc/internal-apis.md (keys section).
import type { KeyObject } from 'node:crypto';

export type SignatureAlgorithm = 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87' | 'slh-dsa-sha2-128s';
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  'ml-dsa-44',
  'ml-dsa-65',
  'ml-dsa-87',
  'slh-dsa-sha2-128s',
];
export const DEFAULT_ALGORITHM: SignatureAlgorithm = 'ml-dsa-65';

export type Role =
  | 'vendor-root'
  | 'vendor'
  | 'user-root'
  | 'peer-issuer'
  | 'user'
  | 'operator'
  | 'peer'
  | 'broker';
export const ROLES: readonly Role[] = [
  'vendor-root',
  'vendor',
  'user-root',
  'peer-issuer',
  'user',
  'operator',
  'peer',
  'broker',
];

export type EnvelopeType =
  | 'layer'
  | 'coreos'
  | 'bundle'
  | 'stage1'
  | 'update'
  | 'downgrade'
  | 'stage2'
  | 'config'
  | 'command'
  | 'membership'
  | 'enroll-token'
  | 'result'
  | 'status'
  | 'secret'
  | 'nats-user'
  | 'file';
export const ENVELOPE_TYPES: readonly EnvelopeType[] = [
  'layer',
  'coreos',
  'bundle',
  'stage1',
  'update',
  'downgrade',
  'stage2',
  'config',
  'command',
  'membership',
  'enroll-token',
  'result',
  'status',
  'secret',
  'nats-user',
  'file',
];

/** A private signing key with its public half. */
export interface SigningKey {
  algorithm: SignatureAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A parsed X.509 certificate of this PKI. */
export interface Certificate {
  der: Uint8Array;
  pem: string;
  /** sha256 of the DER, lowercase hex. */
  fingerprint: string;
  /** Subject common name. */
  subject: string;
  issuer: string;
  serial: string;
  role: Role;
  algorithm: SignatureAlgorithm;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  pathLen: number | undefined;
  scope?: { groups: string[]; actions: string[] };
  peerId?: string;
  kemPublicKey?: Uint8Array;
  dnsNames: string[];
  /** Raw public key bytes (FIPS 204/205 encoding). */
  publicKey: Uint8Array;
}

/** One signature of an envelope or a detached signature. */
export interface Signature {
  alg: SignatureAlgorithm;
  /** ISO 8601 UTC creation time, bound into the signed bytes. */
  created: string;
  /** sha256 hex of the signer's certificate DER, bound into the signed bytes. */
  signer: string;
  /** Certificate chain, leaf first, base64 DER. */
  chain: string[];
  /** base64 signature. */
  sig: string;
}

export interface Envelope {
  v: 1;
  type: EnvelopeType;
  payload: unknown;
  signatures: Signature[];
}
