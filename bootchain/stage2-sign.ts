// Signing and verifying a stage-2 boot partition. The vendor signs the 4096-byte descriptor
// with deterministic ML-DSA under the context `milkyway/v1/stage2`, so the same kernel,
// initramfs, command line and key give the same partition bytes. Verification follows the
// order the C verifier in stage 1 uses (bootchain/verifier/stage2.c): layout prefix, pinned
// key, signature, then the signed fields, rollback floor and each part's digest.
import { createHash } from 'node:crypto';
import {
  assertMaySign,
  type Certificate,
  contextOf,
  type SigningKey,
  signDeterministic,
  verify,
} from '../keys/index.ts';
import { BootchainError } from './bootchain-error.ts';
import type { PinnedKey } from './stage1-config.ts';
import {
  assembleStage2,
  decodeSignedHeader,
  decodeStage2Prefix,
  encodeStage2Header,
  HEADER_SIZE,
  keyIdOf,
  partsOf,
  STAGE2_ALGORITHMS,
  type Stage2Algorithm,
  type Stage2Descriptor,
} from './stage2-descriptor.ts';

export const STAGE2_CONTEXT = contextOf('stage2');

export interface Stage2Input {
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: string;
  rootHash: string;
  name: string;
  version: string;
  rollbackIndex: bigint;
  /** Signing time (SOURCE_DATE_EPOCH), Unix seconds. */
  created: bigint;
}

const ALG_OF: Record<string, Stage2Algorithm> = { 'ml-dsa-44': 44, 'ml-dsa-65': 65, 'ml-dsa-87': 87 };

/** The whole boot partition image for `input`, signed by `key` (whose certificate is `cert`). */
export function signStage2(
  input: Stage2Input,
  o: { key: SigningKey; cert: Certificate },
): { image: Uint8Array; descriptor: Stage2Descriptor } {
  assertMaySign(o.cert, 'stage2');
  const algorithm = ALG_OF[o.key.algorithm];
  if (algorithm === undefined)
    throw new BootchainError('E_DESC_ALGORITHM', `Cannot sign stage 2 with ${o.key.algorithm}: ML-DSA only`);
  const descriptor: Stage2Descriptor = {
    algorithm,
    rollbackIndex: input.rollbackIndex,
    created: input.created,
    keyId: keyIdOf(o.cert.publicKey),
    name: input.name,
    version: input.version,
    ...partsOf(input.kernel, input.initrd),
    rootHash: input.rootHash,
    cmdline: input.cmdline,
  };
  const header = encodeStage2Header(descriptor);
  const signature = signDeterministic(o.key, header, STAGE2_CONTEXT);
  if (!verify(o.key.algorithm, o.cert.publicKey, header, signature, STAGE2_CONTEXT))
    throw new BootchainError(
      'E_DESC_SIGNATURE',
      'The stage-2 signature does not verify under the signer certificate',
    );
  return { image: assembleStage2(header, signature, input.kernel, input.initrd), descriptor };
}

export interface VerifiedStage2 {
  descriptor: Stage2Descriptor;
  signer: PinnedKey;
  kernel: Uint8Array;
  initrd: Uint8Array;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Checks a boot partition image (`image`, `partitionSize` bytes on disk) against the pinned
 * keys and the rollback floor, in the C verifier's order. Throws a BootchainError whose code
 * names the first failed check.
 */
export function verifyStage2(
  image: Uint8Array,
  o: { pinned: readonly PinnedKey[]; rollbackFloor: bigint; partitionSize?: number; at?: string },
): VerifiedStage2 {
  const at = o.at ?? 'stage 2';
  const size = o.partitionSize ?? image.length;
  const { algorithm, keyId } = decodeStage2Prefix(image, at);
  const signer = o.pinned.find((k) => k.keyId === keyId && k.algorithm === algorithm);
  if (signer === undefined)
    throw new BootchainError(
      'E_DESC_KEY_UNPINNED',
      `${at}: signed by key ${keyId.slice(0, 16)}…, which stage 1 does not pin`,
    );
  const sigLen = STAGE2_ALGORITHMS[algorithm].signature;
  const header = image.subarray(0, HEADER_SIZE);
  const signature = image.subarray(HEADER_SIZE, HEADER_SIZE + sigLen);
  if (!verify(STAGE2_ALGORITHMS[algorithm].name, signer.publicKey, header, signature, STAGE2_CONTEXT))
    throw new BootchainError(
      'E_DESC_SIGNATURE',
      `${at}: the ML-DSA signature does not verify under ${signer.label}`,
    );
  const d = decodeSignedHeader(image, Math.min(size, image.length), at);
  if (d.rollbackIndex < o.rollbackFloor)
    throw new BootchainError(
      'E_DESC_ROLLBACK',
      `${at}: rollback index ${d.rollbackIndex} is below the floor ${o.rollbackFloor}`,
    );
  // The alignment gap between kernel and initramfs is covered by no digest: it must be zero.
  if (image.subarray(d.kernel.offset + d.kernel.size, d.initrd.offset).some((b) => b !== 0))
    throw new BootchainError('E_DESC_LAYOUT', `${at}: the gap between kernel and initramfs is not zero`);
  const kernel = image.subarray(d.kernel.offset, d.kernel.offset + d.kernel.size);
  if (sha(kernel) !== d.kernel.sha256)
    throw new BootchainError('E_DESC_KERNEL_DIGEST', `${at}: the kernel's sha256 is not the signed one`);
  const initrd = image.subarray(d.initrd.offset, d.initrd.offset + d.initrd.size);
  if (sha(initrd) !== d.initrd.sha256)
    throw new BootchainError('E_DESC_INITRD_DIGEST', `${at}: the initramfs's sha256 is not the signed one`);
  return { descriptor: d, signer, kernel, initrd };
}
