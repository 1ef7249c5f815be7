// Shared steps of the file system image makers (fs-erofs.ts, fs-squashfs.ts,
// fs-ext4.ts, fs-vfat.ts): source checks, a temporary output renamed into place,
// and the final size (padded to 4 KiB, or exactly the size asked for).
import { randomBytes } from 'node:crypto';
import { rm, stat, truncate, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';

/** Refuse absurd requested sizes early (16 TiB). */
export const FS_MAX_SIZE = 2 ** 44;

export interface FsImageOptions {
  /** Seconds since the epoch given to every file and to the file system itself. */
  sourceDateEpoch: number;
  /** File system UUID (ext4, erofs, squashfs has none); default derived from nothing: random. */
  uuid?: string;
  /** Map every file to uid/gid 0. */
  rootOwner?: boolean;
  /** Exact image size in bytes (multiple of 4096); default: as small as the tool makes it, padded to 4 KiB. */
  size?: number;
}

export interface FsImageResult {
  /** Image size in bytes (a multiple of 4096). */
  size: number;
}

/** Throws unless `dir` is a directory. */
export async function checkSourceDir(dir: string): Promise<void> {
  let ok = false;
  try {
    ok = (await stat(dir)).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok)
    throw new FormatError('E_FS_SOURCE', `Cannot build a file system from ${dir}: not a directory`, {
      path: dir,
    });
}

export function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > 2 ** 32 - 1) {
    throw new FormatError(
      'E_FS_BAD_EPOCH',
      `Cannot use SOURCE_DATE_EPOCH ${epoch}: expected 0 to 4294967295`,
    );
  }
  return epoch;
}

export function checkSize(size: number | undefined): number | undefined {
  if (size === undefined) return undefined;
  if (!Number.isSafeInteger(size) || size <= 0 || size % BLOCK_SIZE !== 0 || size > FS_MAX_SIZE) {
    throw new FormatError(
      'E_FS_BAD_SIZE',
      `Cannot make an image of ${size} bytes: expected a positive multiple of 4096 up to 16 TiB`,
    );
  }
  return size;
}

/** A temporary path next to `out` (same file system, so rename is atomic). */
export function tempPathFor(out: string): string {
  return join(dirname(out), `.${basename(out)}.tmp-${randomBytes(6).toString('hex')}`);
}

/**
 * Pads `tmp` to 4 KiB (or to `size`, refusing when it is already larger) and renames
 * it to `out`. Removes `tmp` on failure.
 */
export async function finishImage(
  tmp: string,
  out: string,
  size: number | undefined,
): Promise<FsImageResult> {
  try {
    const actual = (await stat(tmp)).size;
    let final = Math.ceil(actual / BLOCK_SIZE) * BLOCK_SIZE;
    if (size !== undefined) {
      if (actual > size) {
        throw new FormatError(
          'E_FS_TOO_SMALL',
          `Cannot fit the file system into ${size} bytes: it needs ${final}`,
          {
            path: out,
            details: { needed: final, size },
          },
        );
      }
      final = size;
    }
    if (final !== actual) await truncate(tmp, final);
    await rename(tmp, out);
    return { size: final };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Runs `body(tmp)` and removes `tmp` if it throws. */
export async function withTemp<T>(out: string, body: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempPathFor(out);
  try {
    return await body(tmp);
  } catch (e) {
    await rm(tmp, { force: true, recursive: true });
    throw e;
  }
}
