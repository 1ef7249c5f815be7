// Signatures over the canonical manifest, in the keys/ envelope format (type 'layer').
// Pack must be reproducible, but Node's ML-DSA signing is hedged (randomised), so layers
// sign the envelope's exact message with FIPS 204 deterministic ML-DSA (noble,
// extraEntropy false) and then check it with keys/ `verify`, the same primitive
// verifyEnvelope uses. Verification is keys/ verifyEnvelope, unchanged.
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import {
  assertMaySign,
  type Certificate,
  canonicalJson,
  type Envelope,
  type Signature,
  type SigningKey,
  signEnvelope,
  verify,
} from '../keys/index.ts';
import { LayerError } from './layer-error.ts';

const CONTEXT = 'milkyway/v1/layer';

function nobleFor(alg: SigningKey['algorithm']) {
  if (alg === 'ml-dsa-44') return ml_dsa44;
  if (alg === 'ml-dsa-65') return ml_dsa65;
  if (alg === 'ml-dsa-87') return ml_dsa87;
  return undefined;
}

export interface SignManifestOptions {
  key: SigningKey;
  /** Signer's chain, leaf first. */
  chain: readonly Certificate[];
  /** Signature time (pack: SOURCE_DATE_EPOCH). */
  now: Date;
  /** Hedged (randomised) signing through keys/ signEnvelope instead of deterministic. */
  hedged?: boolean;
  /** `expandSigningKey(key)`, computed ahead (pack does it while mkfs.erofs runs). */
  expanded?: ExpandedKey;
}

/** The deterministic signer's ML-DSA secret key, expanded from the key's seed. */
export interface ExpandedKey {
  key: SigningKey;
  secretKey: Uint8Array;
}

/**
 * Expands `key`'s seed into the ML-DSA secret key deterministic signing needs (FIPS 204
 * ML-DSA.KeyGen_internal: about 40 % of a signature's cost in a fresh process); undefined for
 * an algorithm noble does not sign.
 */
export function expandSigningKey(key: SigningKey): ExpandedKey | undefined {
  const impl = nobleFor(key.algorithm);
  if (impl === undefined) return undefined;
  return { key, secretKey: impl.keygen(seedOf(key)).secretKey };
}

function seedOf(key: SigningKey): Uint8Array {
  return new Uint8Array(key.privateKey.export({ format: 'raw-seed' } as never) as unknown as Buffer);
}

/**
 * What signing checks before it signs, for a caller that wants to fail before expensive work
 * (pack, before mkfs.erofs): a chain, a leaf whose role may sign layers, and, for the
 * deterministic signer, a key that is the leaf's. Returns the leaf.
 */
export function checkSigner(key: SigningKey, chain: readonly Certificate[], hedged = false): Certificate {
  const leaf = chain[0];
  if (leaf === undefined)
    throw new LayerError('E_SIGNER_CHAIN', 'Signing a layer needs the signer certificate chain');
  assertMaySign(leaf, 'layer');
  if (hedged || nobleFor(key.algorithm) === undefined) return leaf; // keys/ signEnvelope checks the key
  // Same check as keys/ signEnvelope (envelope.ts prepare()).
  const pub = Buffer.from(key.publicKey.export({ format: 'raw-public' } as never) as unknown as Buffer);
  if (!pub.equals(Buffer.from(leaf.publicKey))) {
    throw new LayerError('E_KEY_MISMATCH', `Signing key does not belong to certificate ${leaf.subject}`);
  }
  return leaf;
}

/** One signature of type 'layer' over `manifestJson`. */
export function signManifest(manifestJson: unknown, o: SignManifestOptions): Signature {
  const leaf = checkSigner(o.key, o.chain, o.hedged === true);
  const impl = nobleFor(o.key.algorithm);
  if (o.hedged === true || impl === undefined) {
    const env = signEnvelope({
      type: 'layer',
      payload: manifestJson,
      key: o.key,
      chain: o.chain,
      now: o.now,
    });
    return env.signatures[0] as Signature;
  }
  // Same head as keys/ signEnvelope (envelope.ts prepare()).
  const created = new Date(Math.floor(o.now.getTime() / 1000) * 1000).toISOString();
  const head = { alg: o.key.algorithm, created, signer: leaf.fingerprint };
  const msg = canonicalJson({ v: 1, type: 'layer', ...head, payload: manifestJson });
  const sk = o.expanded?.key === o.key ? o.expanded.secretKey : impl.keygen(seedOf(o.key)).secretKey;
  const ctx = new TextEncoder().encode(CONTEXT);
  const sig = impl.sign(msg, sk, { context: ctx, extraEntropy: false });
  if (!verify(o.key.algorithm, leaf.publicKey, msg, sig, CONTEXT)) {
    throw new LayerError(
      'E_SIGNATURE_SELFCHECK',
      'The deterministic layer signature does not verify; refusing to write it',
    );
  }
  return {
    ...head,
    chain: o.chain.map((c) => Buffer.from(c.der).toString('base64')),
    sig: Buffer.from(sig).toString('base64'),
  };
}

/** The envelope keys/ verifyEnvelope checks: manifest as payload, the layer's signatures. */
export function layerEnvelope(manifestJson: unknown, signatures: Signature[]): Envelope {
  return { v: 1, type: 'layer', payload: manifestJson, signatures };
}
