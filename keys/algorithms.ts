// Signature (ML-DSA FIPS 204, SLH-DSA FIPS 205) and KEM (ML-KEM-768 FIPS 203) primitives
// behind one interface, with two interchangeable backends: node:crypto (OpenSSL 3.5, fast)
// and @noble/post-quantum (portable). Every signature uses a context string (FIPS 204 ctx).
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { slh_dsa_sha2_128s } from '@noble/post-quantum/slh-dsa.js';
import {
  createPrivateKey,
  createPublicKey,
  decapsulate,
  encapsulate,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { KeysError } from './errors.ts';
import { SIGNATURE_ALGORITHMS, type SignatureAlgorithm, type SigningKey } from './types.ts';

export type Backend = 'node' | 'noble';

/** FIPS 204/205 allow context strings of at most 255 bytes. */
const MAX_CONTEXT = 255;

export function assertAlgorithm(alg: unknown, where = 'algorithm'): SignatureAlgorithm {
  if (typeof alg === 'string' && (SIGNATURE_ALGORITHMS as readonly string[]).includes(alg)) {
    return alg as SignatureAlgorithm;
  }
  throw new KeysError(
    'E_ALG_UNKNOWN',
    `Unknown signature algorithm ${JSON.stringify(alg)} in ${where} (known: ${SIGNATURE_ALGORITHMS.join(', ')})`,
  );
}

function contextBytes(context: string): Uint8Array {
  const b = new TextEncoder().encode(context);
  if (b.length > MAX_CONTEXT) {
    throw new KeysError(
      'E_CONTEXT_TOO_LONG',
      `Context string is ${b.length} bytes, at most ${MAX_CONTEXT} allowed`,
    );
  }
  return b;
}

function noble(alg: SignatureAlgorithm) {
  switch (alg) {
    case 'ml-dsa-44':
      return ml_dsa44;
    case 'ml-dsa-65':
      return ml_dsa65;
    case 'ml-dsa-87':
      return ml_dsa87;
    case 'slh-dsa-sha2-128s':
      return slh_dsa_sha2_128s;
  }
}

/** Algorithm of a node KeyObject, or E_ALG_UNKNOWN. */
export function keyAlgorithm(key: KeyObject): SignatureAlgorithm {
  return assertAlgorithm(key.asymmetricKeyType, 'key');
}

export function generateSigningKey(algorithm: SignatureAlgorithm): SigningKey {
  const alg = assertAlgorithm(algorithm);
  // biome-ignore lint/suspicious/noExplicitAny: node's overloads do not list every PQ name
  const { privateKey, publicKey } = generateKeyPairSync(alg as any) as {
    privateKey: KeyObject;
    publicKey: KeyObject;
  };
  return { algorithm: alg, privateKey, publicKey };
}

/** Raw FIPS encoding of a public key. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  // biome-ignore lint/suspicious/noExplicitAny: 'raw-public' is newer than @types/node
  return new Uint8Array(key.export({ format: 'raw-public' } as any) as Buffer);
}

export function publicKeyFromRaw(alg: SignatureAlgorithm | 'ml-kem-768', raw: Uint8Array): KeyObject {
  // biome-ignore lint/suspicious/noExplicitAny: raw import options are newer than @types/node
  return createPublicKey({ key: Buffer.from(raw), format: 'raw-public', asymmetricKeyType: alg } as any);
}

/** The secret key in noble's encoding (ML-DSA: expanded from the seed; SLH-DSA: raw). */
function nobleSecretKey(key: SigningKey): Uint8Array {
  if (key.algorithm === 'slh-dsa-sha2-128s') {
    // biome-ignore lint/suspicious/noExplicitAny: 'raw-private' is newer than @types/node
    return new Uint8Array(key.privateKey.export({ format: 'raw-private' } as any) as Buffer);
  }
  // biome-ignore lint/suspicious/noExplicitAny: 'raw-seed' is newer than @types/node
  const seed = new Uint8Array(key.privateKey.export({ format: 'raw-seed' } as any) as Buffer);
  return noble(key.algorithm).keygen(seed).secretKey;
}

const nobleSecretCache = new WeakMap<KeyObject, Uint8Array>();

export function sign(
  key: SigningKey,
  message: Uint8Array,
  context: string,
  backend: Backend = 'node',
): Uint8Array {
  const ctx = contextBytes(context);
  if (backend === 'node') {
    return new Uint8Array(nodeSign(null, message, { key: key.privateKey, context: ctx } as never));
  }
  let sk = nobleSecretCache.get(key.privateKey);
  if (sk === undefined) {
    sk = nobleSecretKey(key);
    nobleSecretCache.set(key.privateKey, sk);
  }
  return noble(key.algorithm).sign(message, sk, { context: ctx });
}

/**
 * FIPS 204 deterministic ML-DSA (no fresh randomness), so a signature over the same bytes
 * with the same key is the same bytes: what reproducible artefacts (a disk built twice, a
 * stage-2 descriptor) need. Node's ML-DSA signing is hedged, so this signs with noble
 * (`extraEntropy: false`) and checks the result with node:crypto before returning it.
 */
export function signDeterministic(key: SigningKey, message: Uint8Array, context: string): Uint8Array {
  if (key.algorithm === 'slh-dsa-sha2-128s')
    throw new KeysError('E_ALG_UNKNOWN', 'Deterministic signing is for ML-DSA keys (this is SLH-DSA)');
  const ctx = contextBytes(context);
  let sk = nobleSecretCache.get(key.privateKey);
  if (sk === undefined) {
    sk = nobleSecretKey(key);
    nobleSecretCache.set(key.privateKey, sk);
  }
  const sig = noble(key.algorithm).sign(message, sk, { context: ctx, extraEntropy: false });
  if (!verify(key.algorithm, key.publicKey, message, sig, context))
    throw new KeysError('E_SIG_INVALID', 'A deterministic signature did not verify right after signing');
  return sig;
}

/** True when `signature` is valid; false for any mismatch (never throws on bad bytes). */
export function verify(
  alg: SignatureAlgorithm,
  publicKey: Uint8Array | KeyObject,
  message: Uint8Array,
  signature: Uint8Array,
  context: string,
  backend: Backend = 'node',
): boolean {
  const ctx = contextBytes(context);
  try {
    if (backend === 'node') {
      const key = publicKey instanceof Uint8Array ? publicKeyFromRaw(alg, publicKey) : publicKey;
      if (key.asymmetricKeyType !== alg) return false;
      return nodeVerify(null, message, { key, context: ctx } as never, signature);
    }
    const raw = publicKey instanceof Uint8Array ? publicKey : rawPublicKey(publicKey);
    return noble(alg).verify(signature, message, raw, { context: ctx });
  } catch {
    return false;
  }
}

// ---- ML-KEM-768 ----

export interface KemKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateKemKey(): KemKeyPair {
  // biome-ignore lint/suspicious/noExplicitAny: node's overloads do not list ml-kem-768
  return generateKeyPairSync('ml-kem-768' as any) as unknown as KemKeyPair;
}

export function kemEncapsulate(
  publicKey: Uint8Array,
  backend: Backend = 'node',
): { sharedSecret: Uint8Array; ciphertext: Uint8Array } {
  if (publicKey.length !== 1184) {
    throw new KeysError('E_KEM_KEY', `ML-KEM-768 public key is ${publicKey.length} bytes, expected 1184`);
  }
  if (backend === 'noble') {
    const r = ml_kem768.encapsulate(publicKey);
    return { sharedSecret: r.sharedSecret, ciphertext: r.cipherText };
  }
  // biome-ignore lint/suspicious/noExplicitAny: encapsulate is newer than @types/node
  const r = (encapsulate as any)(publicKeyFromRaw('ml-kem-768', publicKey)) as {
    sharedKey: Buffer;
    ciphertext: Buffer;
  };
  return { sharedSecret: new Uint8Array(r.sharedKey), ciphertext: new Uint8Array(r.ciphertext) };
}

export function kemDecapsulate(
  privateKey: KeyObject,
  ciphertext: Uint8Array,
  backend: Backend = 'node',
): Uint8Array {
  if (privateKey.asymmetricKeyType !== 'ml-kem-768') {
    throw new KeysError(
      'E_KEM_KEY',
      `Key is ${privateKey.asymmetricKeyType}, expected an ML-KEM-768 private key`,
    );
  }
  if (ciphertext.length !== 1088) {
    throw new KeysError(
      'E_SEALED_MALFORMED',
      `ML-KEM-768 ciphertext is ${ciphertext.length} bytes, expected 1088`,
    );
  }
  if (backend === 'noble') {
    // biome-ignore lint/suspicious/noExplicitAny: 'raw-seed' is newer than @types/node
    const seed = new Uint8Array(privateKey.export({ format: 'raw-seed' } as any) as Buffer);
    return ml_kem768.decapsulate(ciphertext, ml_kem768.keygen(seed).secretKey);
  }
  // biome-ignore lint/suspicious/noExplicitAny: decapsulate is newer than @types/node
  return new Uint8Array((decapsulate as any)(privateKey, ciphertext) as Buffer);
}

export function privateKeyFromPem(pem: string | Buffer, passphrase?: string): KeyObject {
  return createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
}
