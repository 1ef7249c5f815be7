// `formatVerity`: builds a dm-verity format-1 hash tree (sha256, 4096/4096) with the
// veritysetup superblock, byte-identical to `veritysetup format` given the same salt and UUID.
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, constants, fstatSync, ftruncateSync, openSync, renameSync, rmSync } from 'node:fs';
import { stat, truncate } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { BLOCK_SIZE } from '../block-size.ts';
import { fileKind, fromHex, toHex, writeFailure } from '../../common/index.ts';
import { uuidFromBytes, uuidToBytes } from '../guid.ts';
import { FormatError } from '../format-error.ts';
import { verityGeometry } from './verity-geometry.ts';
import { type HashOptions, hashDataBlocks } from './verity-hasher.ts';
import { deriveVeritySalt, deriveVerityUuid } from './verity-seed.ts';
import { encodeVeritySuperblock, VERITY_MAX_SALT } from './verity-superblock.ts';
import { fileTreeSink, VerityTreeWriter } from './verity-tree.ts';

export interface FormatVerityOptions extends HashOptions {
  /** Separate hash file; default: append to the data file at `hashOffset`. */
  hashPath?: string;
  /** Byte offset of the superblock in the hash file (multiple of 4096). Default 0, or the data size when appending. */
  hashOffset?: number;
  /** Salt as hex or bytes (0–256 bytes); default: derived from seed+label, else 32 random bytes. */
  salt?: string | Uint8Array;
  /** Superblock UUID; default: derived from seed+label, else random. */
  uuid?: string;
  /** Seed for reproducible salt and UUID (with `label`). */
  seed?: string | Uint8Array;
  label?: string;
  /** Zero-pad a data file whose size is not a multiple of 4096 (it is modified in place). */
  pad?: boolean;
  /** Data blocks to cover; default: all of the data (up to the hash offset when appending). */
  dataBlocks?: number;
  /** Called as data is hashed, in order, with bytes hashed so far and the data size; last call has done = total. */
  onProgress?: (hashedBytes: number, totalBytes: number) => void;
}

export interface VerityResult {
  rootHash: string;
  salt: string;
  uuid: string;
  dataBlocks: number;
  /** Where the superblock was written, in the hash file. */
  hashOffset: number;
  /** Bytes of the hash area (superblock + tree). */
  hashSize: number;
  /** The file the hash area went into. */
  hashPath: string;
}

function resolveSalt(o: FormatVerityOptions): Uint8Array {
  if (o.salt !== undefined) {
    const s = typeof o.salt === 'string' ? hexSalt(o.salt) : o.salt;
    if (s.length > VERITY_MAX_SALT) {
      throw new FormatError('E_VERITY_BAD_SALT', `Cannot use verity salt: ${s.length} bytes, at most 256`);
    }
    return s;
  }
  if (o.seed !== undefined) return deriveVeritySalt(o.seed, o.label ?? '');
  return new Uint8Array(randomBytes(32));
}

function hexSalt(hex: string): Uint8Array {
  try {
    return fromHex(hex, 'salt');
  } catch (e) {
    throw new FormatError('E_VERITY_BAD_SALT', `Cannot use verity salt: ${JSON.stringify(hex)} is not hex`, {
      cause: e,
    });
  }
}

function checkOffset(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n % BLOCK_SIZE !== 0) {
    throw new FormatError(
      'E_VERITY_BAD_OFFSET',
      `Cannot use ${what} ${n}: expected a non-negative multiple of 4096`,
    );
  }
  return n;
}

/** Builds the hash tree for `dataPath`; see doc/verity-format.md. */
export async function formatVerity(
  dataPath: string,
  options: FormatVerityOptions = {},
): Promise<VerityResult> {
  const appended = options.hashPath === undefined || resolve(options.hashPath) === resolve(dataPath);
  const hashPath = options.hashPath ?? dataPath;
  let size: number;
  try {
    const st = await stat(dataPath);
    // By type before any read: a directory would fail mid-hash, a FIFO would read as empty.
    if (!st.isFile()) {
      throw new FormatError(
        'E_NOT_REGULAR_FILE',
        `Cannot read verity data ${dataPath}: it is a ${fileKind(st)}, not a regular file`,
        { path: dataPath, details: { kind: fileKind(st) } },
      );
    }
    size = st.size;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(
      'E_VERITY_DATA_MISSING',
      `Cannot read verity data ${dataPath}: ${(e as Error).message}`,
      {
        path: dataPath,
        cause: e,
      },
    );
  }
  const hashOffsetIn =
    options.hashOffset === undefined ? undefined : checkOffset(options.hashOffset, 'hash offset');
  // When appending, the data ends where the hash area starts (if given).
  let dataBytes = appended && hashOffsetIn !== undefined ? Math.min(size, hashOffsetIn) : size;
  if (options.dataBlocks !== undefined) {
    if (
      !Number.isSafeInteger(options.dataBlocks) ||
      options.dataBlocks < 1 ||
      options.dataBlocks * BLOCK_SIZE > dataBytes
    ) {
      throw new FormatError(
        'E_VERITY_BAD_SIZE',
        `Cannot cover ${options.dataBlocks} data blocks: ${dataPath} has ${Math.floor(dataBytes / BLOCK_SIZE)}`,
        { path: dataPath },
      );
    }
    dataBytes = options.dataBlocks * BLOCK_SIZE;
  } else if (dataBytes % BLOCK_SIZE !== 0) {
    if (options.pad !== true || (appended && hashOffsetIn !== undefined)) {
      throw new FormatError(
        'E_VERITY_UNALIGNED',
        `Cannot protect ${dataPath}: size ${dataBytes} is not a multiple of 4096 (the kernel would leave the last ${dataBytes % BLOCK_SIZE} bytes unprotected); pad it`,
        { path: dataPath },
      );
    }
    dataBytes = Math.ceil(dataBytes / BLOCK_SIZE) * BLOCK_SIZE;
    await truncate(dataPath, dataBytes);
    size = dataBytes;
  }
  if (dataBytes === 0) {
    throw new FormatError('E_VERITY_BAD_SIZE', `Cannot protect ${dataPath}: it is empty`, { path: dataPath });
  }
  const dataBlocks = dataBytes / BLOCK_SIZE;
  const geometry = verityGeometry(dataBlocks);
  const hashOffset = hashOffsetIn ?? (appended ? dataBytes : 0);
  if (appended && hashOffset < dataBytes) {
    throw new FormatError(
      'E_VERITY_BAD_OFFSET',
      `Cannot append hash area at ${hashOffset}: it overlaps the data (${dataBytes} bytes)`,
    );
  }
  const salt = resolveSalt(options);
  const uuid =
    options.uuid !== undefined
      ? uuidFromBytes(uuidToBytes(options.uuid, 'verity UUID'))
      : options.seed !== undefined
        ? deriveVerityUuid(options.seed, options.label ?? '')
        : randomUUID();
  const superblock = encodeVeritySuperblock({
    uuid: uuidToBytes(uuid),
    algorithm: 'sha256',
    dataBlockSize: BLOCK_SIZE,
    hashBlockSize: BLOCK_SIZE,
    dataBlocks,
    salt,
  });

  // A fresh separate hash file is built under a temporary name and renamed into place;
  // an appended area is written in place and the file cut back on failure.
  const inPlace = appended || hashOffset > 0;
  const target = inPlace
    ? hashPath
    : join(dirname(hashPath), `.${basename(hashPath)}.tmp-${process.pid}-${Date.now()}`);
  let fd: number;
  try {
    // An existing hash file with an offset is written into, as veritysetup does.
    fd = openSync(target, inPlace ? (appended ? 'r+' : constants.O_RDWR | constants.O_CREAT) : 'w', 0o644);
  } catch (e) {
    throw new FormatError('E_VERITY_WRITE', `Cannot open ${hashPath} for writing: ${writeFailure(e)}`, {
      path: hashPath,
      cause: e,
    });
  }
  const originalSize = fstatSync(fd).size;
  let ok = false;
  try {
    const sink = fileTreeSink(fd, hashOffset);
    sink(superblock, 0);
    const tree = new VerityTreeWriter(sink, salt, geometry);
    const threads = options.threads === undefined ? {} : { threads: options.threads };
    let hashed = 0;
    for await (const digests of hashDataBlocks(dataPath, dataBlocks, salt, threads)) {
      tree.push(digests);
      // One 32-byte digest per 4096-byte data block.
      hashed += (digests.length / 32) * BLOCK_SIZE;
      options.onProgress?.(hashed, dataBytes);
    }
    const root = tree.finish();
    // A directory at hashPath fails only at the rename: the error names hashPath and the
    // temporary goes in the finally below.
    if (!inPlace) {
      try {
        renameSync(target, hashPath);
      } catch (e) {
        throw new FormatError('E_VERITY_WRITE', `Cannot write ${hashPath}: ${writeFailure(e)}`, {
          path: hashPath,
          cause: e,
        });
      }
    }
    ok = true;
    return {
      rootHash: toHex(root),
      salt: toHex(salt),
      uuid,
      dataBlocks,
      hashOffset,
      hashSize: geometry.hashSize,
      hashPath,
    };
  } finally {
    if (!ok && inPlace) {
      try {
        ftruncateSync(fd, originalSize);
      } catch {
        // keep the original error
      }
    }
    closeSync(fd);
    if (!ok && !inPlace) rmSync(target, { force: true });
  }
}
