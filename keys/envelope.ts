// The signed envelope (doc/envelope-format.md): RFC 8785 canonical JSON signed with ML-DSA
// under context `milkyway/v1/<type>`, binding type, algorithm, time and signer. Attached and
// detached forms; verification checks structure, chain, role policy and signature, fail closed.
import { createHash } from 'node:crypto';
import {
  assertAlgorithm,
  type Backend,
  rawPublicKey,
  sign,
  signDeterministic,
  verify,
} from './algorithms.ts';
import { canonicalJson } from './canonical.ts';
import { certificatePublicKey, MAX_CHAIN, parseCertificateDer } from './certificate.ts';
import { verifyChain } from './chain.ts';
import type { Crl } from './crl.ts';
import { KeysError } from './errors.ts';
import { assertMaySign } from './role-policy.ts';
import {
  type Certificate,
  ENVELOPE_TYPES,
  type Envelope,
  type EnvelopeType,
  type Signature,
  type SigningKey,
} from './types.ts';

export const MAX_ENVELOPE = 16 * 1024 * 1024;
export const MAX_SIGNATURES = 8;

export function contextOf(type: EnvelopeType): string {
  return `milkyway/v1/${type}`;
}

function assertType(type: unknown, where: string): EnvelopeType {
  if (typeof type !== 'string' || !(ENVELOPE_TYPES as readonly string[]).includes(type)) {
    throw new KeysError('E_ENVELOPE_TYPE', `Unknown envelope type ${JSON.stringify(type)} in ${where}`);
  }
  return type as EnvelopeType;
}

/** The exact bytes an attached signature covers. */
function attachedMessage(
  type: EnvelopeType,
  payload: unknown,
  sig: Omit<Signature, 'sig' | 'chain'>,
): Uint8Array {
  return canonicalJson({ v: 1, type, alg: sig.alg, created: sig.created, signer: sig.signer, payload });
}

/** The exact bytes a detached signature covers: the data enters through its SHA-256. */
function detachedMessage(
  type: EnvelopeType,
  data: Uint8Array,
  sig: Omit<Signature, 'sig' | 'chain'>,
): Uint8Array {
  const digest = createHash('sha256').update(data).digest('hex');
  return canonicalJson({
    v: 1,
    type,
    alg: sig.alg,
    created: sig.created,
    signer: sig.signer,
    sha256: digest,
  });
}

export interface SignOptions {
  type: EnvelopeType;
  key: SigningKey;
  /** Signer's chain, leaf first (the anchor may be included or not). */
  chain: readonly Certificate[];
  now?: Date | undefined;
  /** Put only the signer fingerprint in the signature (verifiers then need `certificates`). */
  fingerprintOnly?: boolean | undefined;
  backend?: Backend | undefined;
  /** FIPS 204 deterministic ML-DSA, for artefacts that must be byte-reproducible (a built disk). */
  deterministic?: boolean | undefined;
}

function sigBytes(o: SignOptions, msg: Uint8Array): Uint8Array {
  const ctx = contextOf(o.type);
  return o.deterministic === true ? signDeterministic(o.key, msg, ctx) : sign(o.key, msg, ctx, o.backend);
}

function prepare(o: SignOptions): { head: Omit<Signature, 'sig' | 'chain'>; chain: string[] } {
  const type = assertType(o.type, 'sign options');
  const leaf = o.chain[0];
  if (leaf === undefined) throw new KeysError('E_CHAIN_EMPTY', 'Signing needs the signer certificate chain');
  assertMaySign(leaf, type);
  if (!Buffer.from(rawPublicKey(o.key.publicKey)).equals(Buffer.from(leaf.publicKey))) {
    throw new KeysError('E_KEY_MISMATCH', `Signing key does not belong to certificate ${leaf.subject}`);
  }
  const created = new Date(Math.floor((o.now ?? new Date()).getTime() / 1000) * 1000).toISOString();
  const chain = o.fingerprintOnly === true ? [] : o.chain.map((c) => Buffer.from(c.der).toString('base64'));
  return { head: { alg: o.key.algorithm, created, signer: leaf.fingerprint }, chain };
}

export function signEnvelope(
  o: SignOptions & { payload: unknown; envelope?: Envelope | undefined },
): Envelope {
  const { head, chain } = prepare(o);
  const msg = attachedMessage(o.type, o.payload, head);
  const sig = Buffer.from(sigBytes(o, msg)).toString('base64');
  const signature: Signature = { ...head, chain, sig };
  // Countersigning: add a signature to an existing envelope of the same type and payload.
  if (o.envelope !== undefined) {
    if (o.envelope.type !== o.type)
      throw new KeysError('E_ENVELOPE_TYPE', 'Countersignature type differs from the envelope');
    return { ...o.envelope, signatures: [...o.envelope.signatures, signature] };
  }
  return { v: 1, type: o.type, payload: o.payload, signatures: [signature] };
}

export function signDetached(o: SignOptions & { data: Uint8Array }): Signature {
  const { head, chain } = prepare(o);
  const msg = detachedMessage(o.type, o.data, head);
  return {
    ...head,
    chain,
    sig: Buffer.from(sigBytes(o, msg)).toString('base64'),
  };
}

export interface VerifyOptions {
  type: EnvelopeType;
  anchors: readonly Certificate[];
  crls?: readonly Crl[] | undefined;
  at?: Date | undefined;
  /** Certificates to look signers up in when a signature carries only a fingerprint. */
  certificates?: readonly Certificate[] | undefined;
  backend?: Backend | undefined;
}

function strictBase64(s: unknown, where: string, max: number): Uint8Array {
  if (typeof s !== 'string' || s.length > max || s.length % 4 !== 0) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where} is not canonical base64`);
  }
  const b = Buffer.from(s, 'base64');
  // The decoder skips what is not base64 (and reads base64url), and non-zero padding bits decode
  // to the same bytes: only a string equal to the canonical encoding of what it decodes to is
  // taken, so each byte string has exactly one accepted spelling. (That encoding has only
  // [A-Za-z0-9+/] and up to two '=' at the end, so no separate character check is needed.)
  if (b.toString('base64') !== s)
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where} is not canonical base64`);
  return new Uint8Array(b);
}

function onlyKeys(o: object, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k))
      throw new KeysError('E_ENVELOPE_MALFORMED', `${where} has unknown field ${JSON.stringify(k)}`);
  }
}

/** Checks one signature's shape and returns its parts; throws E_ENVELOPE_MALFORMED / E_ALG_UNKNOWN. */
export function parseSignature(
  s: unknown,
  where = 'signature',
): Signature & { sigBytes: Uint8Array; certs: Certificate[] } {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where} is not an object`);
  }
  onlyKeys(s, ['alg', 'created', 'signer', 'chain', 'sig'], where);
  const o = s as Record<string, unknown>;
  const alg = assertAlgorithm(o.alg, `${where}.alg`);
  if (
    typeof o.created !== 'string' ||
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.created) ||
    Number.isNaN(Date.parse(o.created))
  ) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where}.created is not an ISO 8601 UTC time`);
  }
  if (typeof o.signer !== 'string' || !/^[0-9a-f]{64}$/.test(o.signer)) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where}.signer is not a sha256 hex fingerprint`);
  }
  if (!Array.isArray(o.chain) || o.chain.length > MAX_CHAIN) {
    throw new KeysError(
      'E_ENVELOPE_MALFORMED',
      `${where}.chain must be an array of at most ${MAX_CHAIN} certificates`,
    );
  }
  const certs = o.chain.map((c, i) => parseCertificateDer(strictBase64(c, `${where}.chain[${i}]`, 90_000)));
  const sigBytes = strictBase64(o.sig, `${where}.sig`, 16_000);
  return {
    alg,
    created: o.created,
    signer: o.signer,
    chain: o.chain as string[],
    sig: o.sig as string,
    sigBytes,
    certs,
  };
}

/** Parses envelope bytes or text with size cap and strict shape. */
export function parseEnvelope(input: Envelope | string | Uint8Array): Envelope {
  let v: unknown = input;
  const wire = typeof input === 'string' || input instanceof Uint8Array;
  if (wire) {
    if (input.length > MAX_ENVELOPE) {
      throw new KeysError(
        'E_TOO_LARGE',
        `Envelope is ${input.length} bytes, at most ${MAX_ENVELOPE} allowed`,
      );
    }
    const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new KeysError('E_ENVELOPE_MALFORMED', `Envelope is not JSON: ${(e as Error).message}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KeysError('E_ENVELOPE_MALFORMED', 'Envelope is not an object');
  onlyKeys(v, ['v', 'type', 'payload', 'signatures'], 'envelope');
  const o = v as Record<string, unknown>;
  if (o.v !== 1)
    throw new KeysError('E_ENVELOPE_MALFORMED', `Envelope version ${JSON.stringify(o.v)} is not 1`);
  const type = assertType(o.type, 'envelope');
  if (!('payload' in o)) throw new KeysError('E_ENVELOPE_MALFORMED', 'Envelope has no payload');
  if (!Array.isArray(o.signatures) || o.signatures.length === 0 || o.signatures.length > MAX_SIGNATURES) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `Envelope must carry 1..${MAX_SIGNATURES} signatures`);
  }
  if (wire) assertCanonical(input, v, 'Envelope');
  return { v: 1, type, payload: o.payload, signatures: o.signatures as Signature[] };
}

/**
 * Envelope bytes must be exactly their RFC 8785 form (what `serialize` writes). The signatures
 * cover the canonical payload, not the bytes carrying it, so without this check whitespace,
 * escapes (`\u001F` for `\u001f`), number spellings and key order would be unsigned bytes that
 * change freely. With it, the wire form is a function of the signed values plus the base64
 * signature and chain, which are canonical themselves.
 */
export function assertCanonical(input: string | Uint8Array, value: unknown, what: string): void {
  let canonical: Uint8Array;
  try {
    canonical = canonicalJson(value);
  } catch (e) {
    throw new KeysError(
      'E_ENVELOPE_MALFORMED',
      `${what} holds a value JSON cannot carry: ${(e as Error).message}`,
    );
  }
  const same =
    typeof input === 'string'
      ? new TextDecoder().decode(canonical) === input
      : Buffer.from(canonical).equals(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  if (!same) {
    throw new KeysError(
      'E_ENVELOPE_NOT_CANONICAL',
      `${what} is not in RFC 8785 canonical form (spacing, escapes, number form or key order differ from what was signed)`,
    );
  }
}

function checkSignature(
  parsed: ReturnType<typeof parseSignature>,
  message: (head: Omit<Signature, 'sig' | 'chain'>) => Uint8Array,
  o: VerifyOptions,
): Certificate {
  const chain =
    parsed.certs.length > 0
      ? parsed.certs
      : (o.certificates ?? []).filter((c) => c.fingerprint === parsed.signer);
  const leaf = chain[0];
  if (leaf === undefined)
    throw new KeysError('E_SIGNER_UNKNOWN', `No certificate for signer ${parsed.signer}`);
  if (leaf.fingerprint !== parsed.signer) {
    throw new KeysError('E_ENVELOPE_MALFORMED', 'Signature signer fingerprint does not match its chain leaf');
  }
  if (leaf.algorithm !== parsed.alg) {
    throw new KeysError(
      'E_ENVELOPE_MALFORMED',
      `Signature says ${parsed.alg} but the signer key is ${leaf.algorithm}`,
    );
  }
  verifyChain(chain, { anchors: o.anchors, crls: o.crls, at: o.at });
  assertMaySign(leaf, o.type);
  const msg = message({ alg: parsed.alg, created: parsed.created, signer: parsed.signer });
  if (!verify(parsed.alg, certificatePublicKey(leaf), msg, parsed.sigBytes, contextOf(o.type), o.backend)) {
    throw new KeysError('E_SIG_INVALID', `Signature by ${leaf.subject} does not verify`, {
      details: { signer: leaf.fingerprint },
    });
  }
  return leaf;
}

/** Verifies every signature of an envelope (all must pass); returns payload and signers. */
export function verifyEnvelope(
  input: Envelope | string | Uint8Array,
  o: VerifyOptions,
): { payload: unknown; signer: Certificate; signers: Certificate[] } {
  const env = parseEnvelope(input);
  if (env.type !== o.type) {
    throw new KeysError('E_ENVELOPE_TYPE', `Envelope type is ${env.type}, expected ${o.type}`);
  }
  const signers = env.signatures.map((s, i) =>
    checkSignature(
      parseSignature(s, `signatures[${i}]`),
      (h) => attachedMessage(env.type, env.payload, h),
      o,
    ),
  );
  return { payload: env.payload, signer: signers[0] as Certificate, signers };
}

export function verifyDetached(
  data: Uint8Array,
  signature: Signature | string | Uint8Array,
  o: VerifyOptions,
): Certificate {
  let s: unknown = signature;
  const wire = typeof signature === 'string' || signature instanceof Uint8Array;
  if (wire) {
    if (signature.length > 1024 * 1024)
      throw new KeysError('E_TOO_LARGE', 'Detached signature is larger than 1 MiB');
    try {
      s = JSON.parse(typeof signature === 'string' ? signature : new TextDecoder().decode(signature));
    } catch (e) {
      throw new KeysError('E_ENVELOPE_MALFORMED', `Detached signature is not JSON: ${(e as Error).message}`);
    }
  }
  assertType(o.type, 'verify options');
  const parsed = parseSignature(s);
  if (wire) assertCanonical(signature, s, 'Detached signature');
  return checkSignature(parsed, (h) => detachedMessage(o.type, data, h), o);
}

/** Wire form of an envelope or signature: canonical JSON bytes. */
export function serialize(value: Envelope | Signature): Uint8Array {
  return canonicalJson(value);
}
