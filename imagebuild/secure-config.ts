// The secure config the agent reads from the secure-config partition (doc/agent-config.md):
// a keys/ envelope of type 'config' signed by the user key, in canonical JSON.
import { type Certificate, type Crl, type SigningKey, serialize, verifyEnvelope } from '../keys/index.ts';
import { signEnvelopeDeterministic } from './deterministic-sign.ts';

/** Signs the secure config payload; deterministic for the same key, payload and time. */
export function signSecureConfig(o: {
  payload: Record<string, unknown>;
  key: SigningKey;
  chain: readonly Certificate[];
  now: Date;
}): Uint8Array {
  const payload = { v: 1, ...o.payload };
  return serialize(
    signEnvelopeDeterministic({ type: 'config', payload, key: o.key, chain: o.chain, now: o.now }),
  );
}

/** Verifies a secure config file's bytes; returns the payload and the signer. */
export function verifySecureConfig(
  bytes: Uint8Array,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[] },
): { payload: unknown; signer: Certificate } {
  const r = verifyEnvelope(bytes, {
    type: 'config',
    anchors: o.anchors,
    ...(o.crls === undefined ? {} : { crls: o.crls }),
  });
  return { payload: r.payload, signer: r.signer };
}
