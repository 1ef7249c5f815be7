// `buildVerityArea`: the whole dm-verity hash area (superblock block, then the tree, top level
// first) of data blocks at any offset of a file, built in memory — what a container that
// stores the area next to the data wants (layers' .mwl) instead of a hash file. Same hashing
// as formatVerity (all cores, flat memory for the data), same bytes as `veritysetup format`.
import { statSync } from 'node:fs';
import { toHex } from '../../common/index.ts';
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';
import { VERITY_DIGEST_SIZE, verityGeometry } from './verity-geometry.ts';
import { type HashOptions, hashDataBlocks } from './verity-hasher.ts';
import { encodeVeritySuperblock, VERITY_MAX_SALT } from './verity-superblock.ts';
import { memoryTreeSink, VerityTreeWriter } from './verity-tree.ts';

export interface VerityAreaOptions extends HashOptions {
  /** Byte offset of data block 0 in the file; default 0. */
  dataOffset?: number;
  /** Data blocks to cover (the file must hold them after `dataOffset`). */
  dataBlocks: number;
  /** 0–256 bytes. */
  salt: Uint8Array;
  /** Superblock UUID, 16 bytes (RFC 4122 order). */
  uuid: Uint8Array;
  /** Called as data is hashed: bytes hashed so far, the data size. */
  onProgress?: (hashedBytes: number, totalBytes: number) => void;
}

export interface VerityArea {
  /** The hash area exactly as veritysetup writes it at hash offset 0. */
  area: Uint8Array;
  rootHash: string;
}

/** Hashes the data of `dataPath` and returns its hash area and root hash. */
export async function buildVerityArea(dataPath: string, o: VerityAreaOptions): Promise<VerityArea> {
  if (o.salt.length > VERITY_MAX_SALT)
    throw new FormatError('E_VERITY_BAD_SALT', `Cannot use verity salt: ${o.salt.length} bytes, at most 256`);
  const geometry = verityGeometry(o.dataBlocks);
  const dataOffset = o.dataOffset ?? 0;
  let size: number;
  try {
    size = statSync(dataPath).size;
  } catch (e) {
    throw new FormatError(
      'E_VERITY_DATA_MISSING',
      `Cannot read verity data ${dataPath}: ${(e as Error).message}`,
      {
        path: dataPath,
        cause: e,
      },
    );
  }
  if (size - dataOffset < o.dataBlocks * BLOCK_SIZE)
    throw new FormatError(
      'E_VERITY_DATA_SHORT',
      `Cannot hash ${dataPath}: ${o.dataBlocks} blocks from byte ${dataOffset} need ${dataOffset + o.dataBlocks * BLOCK_SIZE} bytes, it has ${size}`,
      { path: dataPath },
    );
  const area = new Uint8Array(geometry.hashSize);
  area.set(
    encodeVeritySuperblock({
      uuid: o.uuid,
      algorithm: 'sha256',
      dataBlockSize: BLOCK_SIZE,
      hashBlockSize: BLOCK_SIZE,
      dataBlocks: o.dataBlocks,
      salt: o.salt,
    }),
    0,
  );
  const tree = new VerityTreeWriter(memoryTreeSink(area), o.salt, geometry);
  const total = o.dataBlocks * BLOCK_SIZE;
  let hashed = 0;
  const options = {
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    offset: dataOffset,
  };
  for await (const digests of hashDataBlocks(dataPath, o.dataBlocks, o.salt, options)) {
    tree.push(digests);
    hashed += (digests.length / VERITY_DIGEST_SIZE) * BLOCK_SIZE;
    o.onProgress?.(hashed, total);
  }
  return { area, rootHash: toHex(tree.finish()) };
}
