// keys/ envelopes signed with FIPS 204 deterministic ML-DSA, so a disk built twice from the
// same spec, keys and SOURCE_DATE_EPOCH is byte-identical. Node's ML-DSA signing is hedged
// (randomised); this signs the exact message keys/ signEnvelope would sign with noble
// (extraEntropy false) and then checks it with keys/ verifyEnvelope. Same approach as
// layers/layer-signature.ts.
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import {
  assertMaySign,
  type Certificate,
  canonicalJson,
  contextOf,
  type Envelope,
  type EnvelopeType,
  type SigningKey,
  signEnvelope,
  verify,
} from '../keys/index.ts';
import { ImageError } from './image-error.ts';

function nobleFor(alg: SigningKey['algorithm']) {
  if (alg === 'ml-dsa-44') return ml_dsa44;
  if (alg === 'ml-dsa-65') return ml_dsa65;
  if (alg === 'ml-dsa-87') return ml_dsa87;
  return undefined;
}

/** An Envelope of `type` over `payload`, deterministic for ML-DSA keys (hedged for others). */
export function signEnvelopeDeterministic(o: {
  type: EnvelopeType;
  payload: unknown;
  key: SigningKey;
  chain: readonly Certificate[];
  now: Date;
}): Envelope {
  const leaf = o.chain[0];
  if (leaf === undefined)
    throw new ImageError('E_SIGN', `Signing ${o.type} needs the signer certificate chain`);
  assertMaySign(leaf, o.type);
  const impl = nobleFor(o.key.algorithm);
  if (impl === undefined) return signEnvelope({ ...o });
  const created = new Date(Math.floor(o.now.getTime() / 1000) * 1000).toISOString();
  const head = { alg: o.key.algorithm, created, signer: leaf.fingerprint };
  const msg = canonicalJson({ v: 1, type: o.type, ...head, payload: o.payload });
  const seed = new Uint8Array(o.key.privateKey.export({ format: 'raw-seed' } as never) as unknown as Buffer);
  const sk = impl.keygen(seed).secretKey;
  const sig = impl.sign(msg, sk, {
    context: new TextEncoder().encode(contextOf(o.type)),
    extraEntropy: false,
  });
  if (!verify(o.key.algorithm, leaf.publicKey, msg, sig, contextOf(o.type)))
    throw new ImageError('E_SIGN', `The ${o.type} signature does not verify; refusing to write it`);
  return {
    v: 1,
    type: o.type,
    payload: o.payload,
    signatures: [
      {
        ...head,
        chain: o.chain.map((c) => Buffer.from(c.der).toString('base64')),
        sig: Buffer.from(sig).toString('base64'),
      },
    ],
  };
}
