// `verifyVerity`: checks a data/hash pair against a root hash the way the kernel trusts
// it, top-down (root → each tree level → data), and names the first bad block.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { BLOCK_SIZE } from '../block-size.ts';
import { equalBytes, fromHex, toHex } from '../../common/index.ts';
import { FormatError } from '../format-error.ts';
import { VERITY_DIGEST_SIZE, VERITY_FANOUT, type VerityGeometry, verityGeometry } from './verity-geometry.ts';
import { type HashOptions, hashDataBlocks, verityDigest } from './verity-hasher.ts';
import { decodeVeritySuperblock, VERITY_SB_SIZE, type VeritySuperblock } from './verity-superblock.ts';

export interface VerifyVerityOptions extends HashOptions {
  /** Byte offset of the superblock in the hash file (a multiple of 512). */
  hashOffset?: number;
  /** Byte offset of data block 0 in the data file (a multiple of 512); default 0. */
  dataOffset?: number;
  /** Called as data blocks are checked: bytes so far, the data size. */
  onProgress?: (checkedBytes: number, totalBytes: number) => void;
}

/**
 * Offsets a check accepts: sectors, as veritysetup's --hash-offset and losetup --offset do
 * (a container such as the .mwl keeps its hash area 512-aligned, not 4096-aligned).
 */
const OFFSET_ALIGN = 512;

function checkOffset(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n % OFFSET_ALIGN !== 0) {
    throw new FormatError(
      'E_VERITY_BAD_OFFSET',
      `Cannot use ${what} ${n}: expected a non-negative multiple of ${OFFSET_ALIGN}`,
    );
  }
  return n;
}

/** Where the first mismatch is: a data block, or a hash block of a tree level. */
export interface VerityMismatch {
  area: 'data' | 'hash';
  /** Data block index, or hash block index within the hash area (0 = superblock). */
  block: number;
  /** Tree level for hash blocks (0 = the level over the data). */
  level?: number;
}

function mismatch(m: VerityMismatch, what: string): FormatError {
  return new FormatError('E_VERITY_MISMATCH', `Verity check failed: ${what}`, {
    details: { ...m, exitCode: 1 },
  });
}

function readExact(fd: number, buf: Uint8Array, position: number, path: string): void {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) {
      throw new FormatError('E_VERITY_HASH_SHORT', `Cannot read ${path}: it ends at byte ${position + got}`, {
        path,
      });
    }
    got += n;
  }
}

/** Reads and decodes the superblock at `hashOffset`. */
export function readVeritySuperblock(hashPath: string, hashOffset = 0): VeritySuperblock {
  checkOffset(hashOffset, 'hash offset');
  const fd = openFile(hashPath);
  try {
    const block = new Uint8Array(BLOCK_SIZE);
    readExact(fd, block, hashOffset, hashPath);
    const sb = decodeVeritySuperblock(block);
    // veritysetup zeroes the rest of the superblock's block and no reader uses it: refuse
    // anything else, so no byte of a hash area is outside what a check covers.
    if (block.subarray(VERITY_SB_SIZE).some((b) => b !== 0)) {
      throw new FormatError(
        'E_VERITY_SB_PADDING',
        `Verity superblock in ${hashPath}: bytes 512-4095 of its block are not zero`,
        { path: hashPath },
      );
    }
    return sb;
  } finally {
    closeSync(fd);
  }
}

function openFile(path: string): number {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO named as the data or hash file must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FormatError('E_VERITY_DATA_MISSING', `Cannot open ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new FormatError('E_NOT_REGULAR_FILE', `Cannot verify ${path}: not a regular file`, { path });
  }
  return fd;
}

/**
 * Throws E_VERITY_MISMATCH (details: area, block, level) unless every data block
 * and tree block matches `rootHash`. Returns the decoded superblock.
 */
export async function verifyVerity(
  dataPath: string,
  hashPath: string,
  rootHash: string,
  options: VerifyVerityOptions = {},
): Promise<VeritySuperblock> {
  let root: Uint8Array;
  try {
    root = fromHex(rootHash, 'root hash');
  } catch {
    root = new Uint8Array(0);
  }
  if (root.length !== VERITY_DIGEST_SIZE) {
    throw new FormatError(
      'E_VERITY_BAD_ROOT',
      `Cannot use root hash ${JSON.stringify(rootHash)}: expected 64 hex digits`,
    );
  }
  const hashOffset = options.hashOffset ?? 0;
  const dataOffset = checkOffset(options.dataOffset ?? 0, 'data offset');
  const sb = readVeritySuperblock(hashPath, hashOffset);
  const geo = verityGeometry(sb.dataBlocks);
  const dataFd = openFile(dataPath);
  const hashFd = openFile(hashPath);
  try {
    const dataSize = fstatSync(dataFd).size;
    if (dataSize - dataOffset < sb.dataBlocks * BLOCK_SIZE) {
      throw new FormatError(
        'E_VERITY_DATA_SHORT',
        `Cannot verify ${dataPath}: ${dataSize} bytes, the superblock covers ${sb.dataBlocks} blocks from byte ${dataOffset}`,
        { path: dataPath },
      );
    }
    const hashSize = fstatSync(hashFd).size;
    if (hashSize < hashOffset + geo.hashSize) {
      throw new FormatError(
        'E_VERITY_HASH_SHORT',
        `Cannot verify ${hashPath}: ${hashSize} bytes, the tree needs ${hashOffset + geo.hashSize}`,
        { path: hashPath },
      );
    }
    verifyTree(hashFd, hashPath, hashOffset, sb.salt, geo, root);
    await verifyData(dataPath, dataOffset, hashFd, hashPath, hashOffset, sb.salt, geo, root, options);
  } finally {
    closeSync(dataFd);
    closeSync(hashFd);
  }
  return sb;
}

/** Top level against the root, then each level's blocks against their parent's digests. */
function verifyTree(
  fd: number,
  path: string,
  offset: number,
  salt: Uint8Array,
  geo: VerityGeometry,
  root: Uint8Array,
) {
  const top = geo.levels.length - 1;
  if (top < 0) return;
  const block = new Uint8Array(BLOCK_SIZE);
  const parent = new Uint8Array(BLOCK_SIZE);
  const topLevel = geo.levels[top] as (typeof geo.levels)[number];
  readExact(fd, block, offset + topLevel.firstBlock * BLOCK_SIZE, path);
  if (!equalBytes(verityDigest(salt, block), root)) {
    throw mismatch(
      { area: 'hash', block: topLevel.firstBlock, level: top },
      `top hash block ${topLevel.firstBlock} (level ${top}) does not match the root hash`,
    );
  }
  for (let level = top; level >= 0; level--) {
    const l = geo.levels[level] as (typeof geo.levels)[number];
    const p = geo.levels[level + 1];
    let parentIndex = -1;
    for (let j = 0; j < l.blocks; j++) {
      const abs = l.firstBlock + j;
      readExact(fd, block, offset + abs * BLOCK_SIZE, path);
      if (p !== undefined) {
        const pi = Math.floor(j / VERITY_FANOUT);
        if (pi !== parentIndex) {
          readExact(fd, parent, offset + (p.firstBlock + pi) * BLOCK_SIZE, path);
          parentIndex = pi;
        }
        const e = (j % VERITY_FANOUT) * VERITY_DIGEST_SIZE;
        if (!equalBytes(verityDigest(salt, block), parent.subarray(e, e + VERITY_DIGEST_SIZE))) {
          throw mismatch(
            { area: 'hash', block: abs, level },
            `hash block ${abs} (level ${level}) does not match its parent`,
          );
        }
      }
      // The unused tail of a level's last block must be zero, as veritysetup verify demands.
      if (j === l.blocks - 1) {
        const used = (l.entries - j * VERITY_FANOUT) * VERITY_DIGEST_SIZE;
        if (block.subarray(used).some((b) => b !== 0)) {
          throw mismatch(
            { area: 'hash', block: abs, level },
            `hash block ${abs} (level ${level}) has non-zero padding`,
          );
        }
      }
    }
  }
}

async function verifyData(
  dataPath: string,
  dataOffset: number,
  hashFd: number,
  hashPath: string,
  offset: number,
  salt: Uint8Array,
  geo: VerityGeometry,
  root: Uint8Array,
  options: VerifyVerityOptions,
): Promise<void> {
  const level0 = geo.levels[0];
  const stored = new Uint8Array(BLOCK_SIZE);
  let storedIndex = -1;
  let block = 0;
  const hashing = {
    offset: dataOffset,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  };
  const total = geo.dataBlocks * BLOCK_SIZE;
  for await (const digests of hashDataBlocks(dataPath, geo.dataBlocks, salt, hashing)) {
    for (let i = 0; i < digests.length; i += VERITY_DIGEST_SIZE, block++) {
      const d = digests.subarray(i, i + VERITY_DIGEST_SIZE);
      let expected: Uint8Array;
      if (level0 === undefined) expected = root;
      else {
        const hb = Math.floor(block / VERITY_FANOUT);
        if (hb !== storedIndex) {
          readExact(hashFd, stored, offset + (level0.firstBlock + hb) * BLOCK_SIZE, hashPath);
          storedIndex = hb;
        }
        const e = (block % VERITY_FANOUT) * VERITY_DIGEST_SIZE;
        expected = stored.subarray(e, e + VERITY_DIGEST_SIZE);
      }
      if (!equalBytes(d, expected)) {
        throw mismatch(
          { area: 'data', block },
          `data block ${block} (byte ${block * BLOCK_SIZE}) has digest ${toHex(d)}, expected ${toHex(expected)}`,
        );
      }
    }
    options.onProgress?.(block * BLOCK_SIZE, total);
  }
}
