// A layer's payload and its dm-verity hash area, through formats/verity (the one verity
// implementation): pack builds the area in memory from the erofs image; the full check reads
// payload.verity and payload.erofs in place inside the .mwl and verifies them top-down the way
// the kernel trusts them (signed root → each tree level → every data block), naming the first
// bad block. A layer that passes is exactly what the kernel's dm-verity accepts.
import { open } from 'node:fs/promises';
import type { Progress } from '../common/index.ts';
import {
  BLOCK_SIZE,
  buildVerityArea,
  deriveVerityUuid,
  isFormatError,
  readVeritySuperblock,
  VERITY_SB_SIZE,
  verifyVerity,
} from '../formats/index.ts';
import type { LayerFile } from './layer-file.ts';
import { LayerError } from './layer-error.ts';

function superblockError(layer: LayerFile, what: string, cause?: unknown): LayerError {
  return new LayerError('E_VERITY_SUPERBLOCK', `${layer.path}: payload.verity ${what}`, {
    path: layer.path,
    details: { member: 'payload.verity' },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Checks the verity superblock against the manifest (cheap; always done, also when the kernel
 * checks the data): it decodes, its salt and block count are the signed ones, and the rest of
 * its 4096-byte block is zero (veritysetup ignores those bytes; a .mwl has no unsigned slack).
 * Returns the superblock's UUID.
 */
export async function checkVeritySuperblock(layer: LayerFile): Promise<Uint8Array> {
  const v = layer.manifest.payload.verity;
  let sb: ReturnType<typeof readVeritySuperblock>;
  try {
    sb = readVeritySuperblock(layer.path, layer.verityOffset);
  } catch (e) {
    if (!isFormatError(e)) throw e;
    throw superblockError(layer, `has no valid verity superblock: ${e.message}`, e);
  }
  if (sb.dataBlocks !== v.dataBlocks || Buffer.from(sb.salt).toString('hex') !== v.salt)
    throw superblockError(
      layer,
      `superblock (blocks ${sb.dataBlocks}, salt ${Buffer.from(sb.salt).toString('hex')}) differs from the manifest`,
    );
  // The UUID is not in the manifest, but pack derives it from signed fields (name, version,
  // created), so it is compared too: every byte of the superblock is bound (doc/layer-format.md).
  const m = layer.manifest;
  const seed = `${m.name}\0${m.version}\0${Math.floor(Date.parse(m.created) / 1000)}`;
  const uuid = deriveVerityUuid(seed, 'mwl-payload').replace(/-/g, '');
  if (Buffer.from(sb.uuid).toString('hex') !== uuid)
    throw superblockError(
      layer,
      `superblock UUID ${Buffer.from(sb.uuid).toString('hex')} is not the one derived from the signed name, version and created time (${uuid})`,
    );
  const fh = await open(layer.path, 'r');
  try {
    const tail = Buffer.alloc(BLOCK_SIZE - VERITY_SB_SIZE);
    const { bytesRead } = await fh.read(tail, 0, tail.length, layer.verityOffset + VERITY_SB_SIZE);
    if (bytesRead !== tail.length || tail.some((b) => b !== 0))
      throw superblockError(layer, 'superblock block is not zero after the superblock');
  } finally {
    await fh.close();
  }
  return sb.uuid;
}

export interface PayloadArea {
  /** The complete hash area (superblock block + tree), as veritysetup writes it. */
  area: Uint8Array;
  rootHash: string;
}

/** The hash area of the erofs image at `payloadPath` (pack). */
export async function buildPayloadVerity(
  payloadPath: string,
  o: {
    dataBlocks: number;
    salt: Uint8Array;
    uuid: Uint8Array;
    /** Hashing threads, the calling one included; default all cores. */
    threads?: number;
    progress?: Progress | undefined;
  },
): Promise<PayloadArea> {
  return buildVerityArea(payloadPath, {
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    dataBlocks: o.dataBlocks,
    salt: o.salt,
    uuid: o.uuid,
    ...(o.progress === undefined ? {} : { onProgress: (d: number, t: number) => o.progress?.bytes(d, t) }),
  });
}

/**
 * Full check, in place: the superblock, then the tree and every data block against the signed
 * root. Throws E_VERITY_SUPERBLOCK, E_VERITY_TREE_MISMATCH (a hash block; details.block,
 * details.level) or E_PAYLOAD_DIGEST (a data block of payload.erofs; details.block).
 */
export async function checkPayload(layer: LayerFile, progress?: Progress): Promise<void> {
  await checkVeritySuperblock(layer);
  const p = layer.manifest.payload;
  try {
    await verifyVerity(layer.path, layer.path, p.verity.rootHash, {
      hashOffset: layer.verityOffset,
      dataOffset: layer.payloadOffset,
      ...(progress === undefined ? {} : { onProgress: (d: number, t: number) => progress.bytes(d, t) }),
    });
  } catch (e) {
    if (!isFormatError(e, 'E_VERITY_MISMATCH')) throw e;
    const d = e.details ?? {};
    if (d.area === 'data')
      throw new LayerError(
        'E_PAYLOAD_DIGEST',
        `${layer.path}: payload.erofs block ${d.block} does not match the signed verity root hash`,
        { path: layer.path, cause: e, details: { member: 'payload.erofs', block: d.block } },
      );
    throw new LayerError(
      'E_VERITY_TREE_MISMATCH',
      `${layer.path}: payload.verity hash block ${d.block} (level ${d.level}) does not match its parent block or the signed root hash`,
      { path: layer.path, cause: e, details: { member: 'payload.verity', block: d.block, level: d.level } },
    );
  }
}
