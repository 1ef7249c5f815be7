// Sealed secrets (doc/sealed-secret-format.md): ML-KEM-768 to the recipient peer's KEM key,
// HKDF-SHA256 bound to context + recipient + KEM ciphertext, AES-256-GCM, signed by the sender
// as a `secret` envelope. Wrong sender, tampered byte and wrong recipient fail distinctly.
import {
  createCipheriv,
  createHash,
  createDecipheriv,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { type Backend, kemDecapsulate, kemEncapsulate } from './algorithms.ts';
import { canonicalJson } from './canonical.ts';
import type { Crl } from './crl.ts';
import { signEnvelope, verifyEnvelope } from './envelope.ts';
import { KeysError } from './errors.ts';
import type { Certificate, Envelope, SigningKey } from './types.ts';

export const SEALED_SUITE = 'ML-KEM-768+HKDF-SHA256+AES-256-GCM';
export const MAX_SECRET = 1024 * 1024;

export interface SealedPayload {
  suite: typeof SEALED_SUITE;
  context: string;
  /** Recipient certificate fingerprint (sha256 hex). */
  recipient: string;
  kem: string;
  nonce: string;
  /** AES-256-GCM ciphertext with the 16-byte tag appended, base64. */
  ct: string;
}

export type SealedSecret = Envelope;

function deriveKey(sharedSecret: Uint8Array, context: string, recipient: string, kem: string): Buffer {
  // HKDF info is capped at 1024 bytes in node, so the KEM ciphertext enters by its SHA-256.
  const kemDigest = createHash('sha256').update(kem).digest('hex');
  const info = canonicalJson({ suite: SEALED_SUITE, context, recipient, kem: kemDigest });
  return Buffer.from(hkdfSync('sha256', sharedSecret, new Uint8Array(0), info, 32));
}

function aad(context: string, recipient: string): Uint8Array {
  return canonicalJson({ suite: SEALED_SUITE, context, recipient });
}

export function sealSecret(o: {
  plaintext: Uint8Array;
  recipient: Certificate;
  context: string;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date | undefined;
  backend?: Backend | undefined;
}): SealedSecret {
  if (o.plaintext.length > MAX_SECRET) {
    throw new KeysError('E_TOO_LARGE', `Secret is ${o.plaintext.length} bytes, at most ${MAX_SECRET}`);
  }
  if (o.context.length === 0 || o.context.length > 255) {
    throw new KeysError('E_CONTEXT_TOO_LONG', 'Sealed secret context must be 1..255 characters');
  }
  if (o.recipient.kemPublicKey === undefined) {
    throw new KeysError(
      'E_KEM_KEY',
      `Recipient ${o.recipient.subject} has no ML-KEM-768 key in its certificate`,
    );
  }
  const { sharedSecret, ciphertext } = kemEncapsulate(o.recipient.kemPublicKey, o.backend);
  const kem = Buffer.from(ciphertext).toString('base64');
  const key = deriveKey(sharedSecret, o.context, o.recipient.fingerprint, kem);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad(o.context, o.recipient.fingerprint));
  const ct = Buffer.concat([c.update(o.plaintext), c.final(), c.getAuthTag()]);
  const payload: SealedPayload = {
    suite: SEALED_SUITE,
    context: o.context,
    recipient: o.recipient.fingerprint,
    kem,
    nonce: nonce.toString('base64'),
    ct: ct.toString('base64'),
  };
  return signEnvelope({
    type: 'secret',
    payload,
    key: o.key,
    chain: o.chain,
    now: o.now,
    backend: o.backend,
  });
}

function payloadOf(p: unknown): SealedPayload {
  const o = p as Record<string, unknown>;
  const fields = ['suite', 'context', 'recipient', 'kem', 'nonce', 'ct'];
  if (
    typeof p !== 'object' ||
    p === null ||
    Object.keys(o).length !== fields.length ||
    !fields.every((f) => typeof o[f] === 'string') ||
    o.suite !== SEALED_SUITE
  ) {
    throw new KeysError(
      'E_SEALED_MALFORMED',
      `Sealed secret payload must be {${fields.join(', ')}} with suite ${SEALED_SUITE}`,
    );
  }
  return p as SealedPayload;
}

/** Verifies the sender (envelope), the recipient binding and context, then decrypts. */
export function openSecret(
  sealed: SealedSecret | string | Uint8Array,
  o: {
    kemPrivateKey: KeyObject;
    recipient: Certificate;
    context: string;
    anchors: readonly Certificate[];
    crls?: readonly Crl[] | undefined;
    at?: Date | undefined;
    backend?: Backend | undefined;
  },
): Uint8Array {
  const { payload } = verifyEnvelope(sealed, {
    type: 'secret',
    anchors: o.anchors,
    crls: o.crls,
    at: o.at,
    backend: o.backend,
  });
  const p = payloadOf(payload);
  if (p.recipient !== o.recipient.fingerprint) {
    throw new KeysError(
      'E_SECRET_RECIPIENT',
      `Secret is sealed to ${p.recipient}, not to ${o.recipient.subject}`,
    );
  }
  if (p.context !== o.context) {
    throw new KeysError(
      'E_SECRET_CONTEXT',
      `Secret is sealed for context ${JSON.stringify(p.context)}, expected ${JSON.stringify(o.context)}`,
    );
  }
  const kemCt = Buffer.from(p.kem, 'base64');
  const nonce = Buffer.from(p.nonce, 'base64');
  const ct = Buffer.from(p.ct, 'base64');
  if (nonce.length !== 12 || ct.length < 16)
    throw new KeysError('E_SEALED_MALFORMED', 'Sealed secret nonce or ciphertext is truncated');
  const shared = kemDecapsulate(o.kemPrivateKey, new Uint8Array(kemCt), o.backend);
  const key = deriveKey(shared, p.context, p.recipient, p.kem);
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad(p.context, p.recipient));
    d.setAuthTag(ct.subarray(ct.length - 16));
    return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
  } catch (e) {
    throw new KeysError(
      'E_SECRET_DECRYPT',
      'Sealed secret does not decrypt with this KEM key (wrong key or tampered ciphertext)',
      {
        cause: e,
      },
    );
  }
}
