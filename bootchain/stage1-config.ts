// The stage-1 config (doc/stage2-format.md, "Stage-1 config"): what the user's stage 1 pins —
// the vendor ML-DSA keys allowed to sign stage 2, the minimum rollback index, the certificate
// partition's root hash (passed on as `mway.certs=`), the fingerprints of the user and vendor
// roots. Fixed layout, read by the C verifier in stage 1 (bootchain/verifier/config.c) as
// strictly as here. It lives inside the stage-1 initramfs, so the Secure Boot signature over
// the stage-1 UKI covers it; the user also signs it with ML-DSA (type `stage1`) so that
// `mway-image verify` can tie it to the user's identity without trusting RSA.
import { createHash } from 'node:crypto';
import { fieldTable } from '../formats/index.ts';
import {
  assertMaySign,
  type Certificate,
  type Crl,
  type Signature,
  type SigningKey,
  signDetached,
  verifyChain,
  verifyDetached,
} from '../keys/index.ts';
import { BootchainError } from './bootchain-error.ts';
import { keyIdOf, STAGE2_ALGORITHMS, type Stage2Algorithm } from './stage2-descriptor.ts';

export const STAGE1_MAGIC = 'MWS1CONF';
export const STAGE1_FORMAT = 1;
export const MAX_PINNED = 4;
const HEAD = 256;
const PK_MAX = 2592;

const C = 'doc/stage2-format.md, Stage-1 config';
export const STAGE1_HEADER = fieldTable('stage-1 config', HEAD, [
  { name: 'magic', offset: 0, size: 8, type: 'text', value: STAGE1_MAGIC, spec: `${C}: magic` },
  { name: 'format', offset: 8, size: 4, type: 'u32', value: STAGE1_FORMAT, spec: `${C}: format version` },
  { name: 'keyCount', offset: 12, size: 4, type: 'u32', spec: `${C}: pinned keys (1 to 4)` },
  { name: 'rollbackFloor', offset: 16, size: 8, type: 'u64', spec: `${C}: minimum rollback index` },
  {
    name: 'certsRootHash',
    offset: 24,
    size: 32,
    type: 'bytes',
    spec: `${C}: certificate partition root hash`,
  },
  {
    name: 'userRoot',
    offset: 56,
    size: 32,
    type: 'bytes',
    spec: `${C}: sha256 of the user root certificate`,
  },
  {
    name: 'vendorRoot',
    offset: 88,
    size: 32,
    type: 'bytes',
    spec: `${C}: sha256 of the vendor root certificate`,
  },
  {
    name: 'sbSigner',
    offset: 120,
    size: 64,
    type: 'text',
    spec: `${C}: subject of the Secure Boot db certificate`,
  },
  { name: 'reserved', offset: 184, size: HEAD - 184, type: 'reserved', spec: `${C}: zero` },
]);
export const STAGE1_KEY = fieldTable('stage-1 pinned key', 2688, [
  { name: 'algorithm', offset: 0, size: 4, type: 'u32', spec: `${C}: ML-DSA parameter set` },
  { name: 'publicKeyLength', offset: 4, size: 4, type: 'u32', spec: `${C}: public key bytes` },
  {
    name: 'certFingerprint',
    offset: 8,
    size: 32,
    type: 'bytes',
    spec: `${C}: sha256 of the vendor certificate`,
  },
  { name: 'label', offset: 40, size: 56, type: 'text', spec: `${C}: the certificate subject` },
  { name: 'publicKey', offset: 96, size: PK_MAX, type: 'bytes', spec: `${C}: raw public key, zero-padded` },
]);
export const STAGE1_CONFIG_SIZE = HEAD + MAX_PINNED * STAGE1_KEY.size;

export interface PinnedKey {
  algorithm: Stage2Algorithm;
  publicKey: Uint8Array;
  /** sha256 of the public key, hex (what a descriptor names). */
  keyId: string;
  certFingerprint: string;
  label: string;
}

export interface Stage1Config {
  rollbackFloor: bigint;
  certsRootHash: string;
  userRoot: string;
  vendorRoot: string;
  sbSigner: string;
  keys: PinnedKey[];
}

const ALG_OF: Record<string, Stage2Algorithm> = { 'ml-dsa-44': 44, 'ml-dsa-65': 65, 'ml-dsa-87': 87 };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function bad(message: string): never {
  throw new BootchainError('E_STAGE1_CONFIG', message);
}

/** A vendor certificate as a pinned key, after checking it chains to `vendorRoot` and may sign stage2. */
export function pinVendorKey(
  cert: Certificate,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): PinnedKey {
  try {
    verifyChain([cert], {
      anchors: o.anchors,
      crls: o.crls ?? [],
      ...(o.at === undefined ? {} : { at: o.at }),
    });
    assertMaySign(cert, 'stage2');
  } catch (e) {
    throw new BootchainError(
      'E_STAGE1_KEY',
      `Cannot pin ${cert.subject} for stage 2: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const algorithm = ALG_OF[cert.algorithm];
  if (algorithm === undefined)
    throw new BootchainError('E_STAGE1_KEY', `Cannot pin ${cert.subject}: ${cert.algorithm} is not ML-DSA`);
  return {
    algorithm,
    publicKey: cert.publicKey,
    keyId: keyIdOf(cert.publicKey),
    certFingerprint: cert.fingerprint,
    label: cert.subject.slice(0, 55).replace(/[^\x20-\x7e]/g, '?'),
  };
}

export function encodeStage1Config(c: Stage1Config): Uint8Array {
  if (c.keys.length < 1 || c.keys.length > MAX_PINNED)
    bad(`Cannot write the stage-1 config: ${c.keys.length} pinned keys (1 to ${MAX_PINNED})`);
  for (const h of [c.certsRootHash, c.userRoot, c.vendorRoot])
    if (!/^[0-9a-f]{64}$/.test(h))
      bad(`Cannot write the stage-1 config: ${JSON.stringify(h)} is not 64 hex digits`);
  if (!/^[\x20-\x7e]{0,63}$/.test(c.sbSigner))
    bad('Cannot write the stage-1 config: the Secure Boot signer name is not 0–63 printable ASCII');
  const out = new Uint8Array(STAGE1_CONFIG_SIZE);
  out.set(
    STAGE1_HEADER.encode({
      keyCount: c.keys.length,
      rollbackFloor: c.rollbackFloor,
      certsRootHash: Buffer.from(c.certsRootHash, 'hex'),
      userRoot: Buffer.from(c.userRoot, 'hex'),
      vendorRoot: Buffer.from(c.vendorRoot, 'hex'),
      sbSigner: c.sbSigner,
    }),
  );
  c.keys.forEach((k, i) => {
    if (k.publicKey.length !== STAGE2_ALGORITHMS[k.algorithm].publicKey)
      bad(`Cannot pin key ${i}: wrong public key size`);
    out.set(
      STAGE1_KEY.encode({
        algorithm: k.algorithm,
        publicKeyLength: k.publicKey.length,
        certFingerprint: Buffer.from(k.certFingerprint, 'hex'),
        label: k.label,
        publicKey: k.publicKey,
      }),
      HEAD + i * STAGE1_KEY.size,
    );
  });
  return out;
}

function text(raw: Uint8Array, what: string): string {
  const nul = raw.indexOf(0);
  const end = nul < 0 ? raw.length : nul;
  if (raw.subarray(end).some((b) => b !== 0) || raw.subarray(0, end).some((b) => b < 0x20 || b > 0x7e))
    bad(`Cannot read the stage-1 config: ${what} is not NUL-padded printable ASCII`);
  return Buffer.from(raw.subarray(0, end)).toString('latin1');
}

/** Reads a config as strictly as the C verifier: size, magic, version, key count, every padding byte. */
export function decodeStage1Config(b: Uint8Array): Stage1Config {
  if (b.length !== STAGE1_CONFIG_SIZE)
    bad(`Cannot read the stage-1 config: ${b.length} bytes, expected ${STAGE1_CONFIG_SIZE}`);
  if (Buffer.from(STAGE1_HEADER.raw(b, 'magic')).toString('latin1') !== STAGE1_MAGIC)
    bad('Cannot read the stage-1 config: no MWS1CONF magic');
  const h = STAGE1_HEADER.decode(b);
  if (h.format !== STAGE1_FORMAT) bad(`Cannot read the stage-1 config: format ${h.format}`);
  if (h.keyCount < 1 || h.keyCount > MAX_PINNED)
    bad(`Cannot read the stage-1 config: ${h.keyCount} pinned keys`);
  if (STAGE1_HEADER.nonZeroReserved(b).length > 0)
    bad('Cannot read the stage-1 config: reserved bytes are not zero');
  const keys: PinnedKey[] = [];
  for (let i = 0; i < MAX_PINNED; i++) {
    const slot = b.subarray(HEAD + i * STAGE1_KEY.size, HEAD + (i + 1) * STAGE1_KEY.size);
    if (i >= h.keyCount) {
      if (slot.some((x) => x !== 0)) bad(`Cannot read the stage-1 config: unused key slot ${i} is not zero`);
      continue;
    }
    const k = STAGE1_KEY.decode(slot);
    const alg = STAGE2_ALGORITHMS[k.algorithm as Stage2Algorithm];
    if (alg === undefined || k.publicKeyLength !== alg.publicKey)
      bad(`Cannot read the stage-1 config: key ${i} is not an ML-DSA-44/65/87 key`);
    if (k.publicKey.subarray(alg.publicKey).some((x) => x !== 0))
      bad(`Cannot read the stage-1 config: key ${i} padding is not zero`);
    const publicKey = k.publicKey.slice(0, alg.publicKey);
    keys.push({
      algorithm: k.algorithm as Stage2Algorithm,
      publicKey,
      keyId: keyIdOf(publicKey),
      certFingerprint: hex(k.certFingerprint),
      label: text(STAGE1_KEY.raw(slot, 'label'), `key ${i} label`),
    });
  }
  return {
    rollbackFloor: h.rollbackFloor,
    certsRootHash: hex(h.certsRootHash),
    userRoot: hex(h.userRoot),
    vendorRoot: hex(h.vendorRoot),
    sbSigner: text(STAGE1_HEADER.raw(b, 'sbSigner'), 'sbSigner'),
    keys,
  };
}

/** The user's ML-DSA signature over the config bytes (type stage1, deterministic). */
export function signStage1Config(
  config: Uint8Array,
  o: { key: SigningKey; chain: readonly Certificate[]; now: Date },
): Signature {
  return signDetached({
    type: 'stage1',
    data: config,
    key: o.key,
    chain: o.chain,
    now: o.now,
    deterministic: true,
  });
}

/** Checks the config's signature under `anchors`; returns the signer. */
export function verifyStage1Config(
  config: Uint8Array,
  signature: Signature,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): Certificate {
  try {
    return verifyDetached(config, signature, { type: 'stage1', anchors: o.anchors, crls: o.crls, at: o.at });
  } catch (e) {
    throw new BootchainError(
      'E_STAGE1_SIGNATURE',
      `The stage-1 config's signature does not verify: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
