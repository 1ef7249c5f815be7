// The CoreOS verity signature partition: the Discoverable Partitions Specification's JSON
// shape {"rootHash", "certificateFingerprint", "signature"}, NUL-padded to a multiple of
// 4096 bytes (at least 16 KiB). Unlike systemd's PKCS#7 over the hex root hash, `signature`
// is base64 of a keys/ envelope of type 'coreos' (ML-DSA, context milkyway/v1/coreos) whose
// payload names the root hash; so the partition type is MilkyWay's own (doc/disk-layout.md).
import { type Certificate, type Crl, type SigningKey, serialize, verifyEnvelope } from '../keys/index.ts';
import { signEnvelopeDeterministic } from './deterministic-sign.ts';
import { ImageError } from './image-error.ts';

export const VERITY_SIG_MIN = 16384;
/** Refuse to parse more than this (the partition may be bigger, the JSON never is). */
const VERITY_SIG_MAX = 1 << 20;

export interface CoreosSignedPayload {
  rootHash: string;
  name: string;
  version: string;
  architecture: string;
}

export interface VeritySig {
  rootHash: string;
  certificateFingerprint: string;
  signature: string;
}

/** Signs `payload` with the vendor key and returns the partition bytes. */
export function encodeVeritySig(o: {
  payload: CoreosSignedPayload;
  key: SigningKey;
  chain: readonly Certificate[];
  now: Date;
}): Uint8Array {
  const env = signEnvelopeDeterministic({
    type: 'coreos',
    payload: o.payload,
    key: o.key,
    chain: o.chain,
    now: o.now,
  });
  const leaf = o.chain[0] as Certificate;
  const json: VeritySig = {
    rootHash: o.payload.rootHash,
    certificateFingerprint: leaf.fingerprint,
    signature: Buffer.from(serialize(env)).toString('base64'),
  };
  const text = new TextEncoder().encode(JSON.stringify(json));
  const size = Math.max(VERITY_SIG_MIN, Math.ceil(text.length / 4096) * 4096);
  const out = new Uint8Array(size);
  out.set(text);
  return out;
}

/**
 * Parses the partition bytes (JSON up to the first NUL); no trust yet. Strict, so no byte of
 * the partition is outside what the signature and these checks cover: the JSON must be exactly
 * what encodeVeritySig writes (these three keys in this order, no spacing), `signature`
 * canonical base64, and every byte after the JSON zero.
 */
export function decodeVeritySig(bytes: Uint8Array, where = 'verity-sig partition'): VeritySig {
  const head = bytes.subarray(0, Math.min(bytes.length, VERITY_SIG_MAX));
  const end = head.indexOf(0);
  if (end < 0 || !head.subarray(end).every((b) => b === 0))
    throw new ImageError(
      'E_VERITY_SIG_MALFORMED',
      `Cannot read ${where}: the JSON is not followed by NUL padding only`,
    );
  const text = new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(0, end));
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ImageError('E_VERITY_SIG_MALFORMED', `Cannot read ${where}: not JSON`, { cause: e });
  }
  const o = j as Record<string, unknown>;
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.rootHash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(o.rootHash) ||
    typeof o.certificateFingerprint !== 'string' ||
    !/^[0-9a-f]{64}$/.test(o.certificateFingerprint) ||
    typeof o.signature !== 'string'
  ) {
    throw new ImageError(
      'E_VERITY_SIG_MALFORMED',
      `Cannot read ${where}: expected rootHash, certificateFingerprint (64 hex) and signature (base64)`,
    );
  }
  const sig: VeritySig = {
    rootHash: o.rootHash,
    certificateFingerprint: o.certificateFingerprint,
    signature: o.signature,
  };
  if (JSON.stringify(sig) !== text || Buffer.from(o.signature, 'base64').toString('base64') !== o.signature) {
    throw new ImageError(
      'E_VERITY_SIG_MALFORMED',
      `Cannot read ${where}: not the canonical {rootHash, certificateFingerprint, signature} JSON with canonical base64`,
    );
  }
  return sig;
}

/**
 * Checks the signature under `anchors` (vendor role, type 'coreos') and that it names
 * `rootHash`; returns the signer and the signed payload.
 */
export function verifyVeritySig(
  sig: VeritySig,
  o: { rootHash: string; anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): { signer: Certificate; payload: CoreosSignedPayload } {
  const envBytes = Buffer.from(sig.signature, 'base64');
  const r = verifyEnvelope(new Uint8Array(envBytes), {
    type: 'coreos',
    anchors: o.anchors,
    ...(o.crls === undefined ? {} : { crls: o.crls }),
    ...(o.at === undefined ? {} : { at: o.at }),
  });
  const payload = r.payload as Partial<CoreosSignedPayload>;
  if (payload.rootHash !== sig.rootHash || sig.rootHash !== o.rootHash) {
    throw new ImageError(
      'E_VERITY_SIG_ROOT',
      `CoreOS signature names root hash ${String(payload.rootHash)}, the verity partition has ${o.rootHash}`,
    );
  }
  if (r.signer.fingerprint !== sig.certificateFingerprint) {
    throw new ImageError(
      'E_VERITY_SIG_SIGNER',
      `CoreOS signature was made by ${r.signer.fingerprint}, the partition names ${sig.certificateFingerprint}`,
    );
  }
  return { signer: r.signer, payload: payload as CoreosSignedPayload };
}
