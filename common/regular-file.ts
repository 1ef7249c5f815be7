// Opening a file that must be a regular file, refusing anything else by its type before a
// single byte is read: a FIFO would block the reader forever (a boot, a verify), a device
// node could have side effects when opened, a directory is a usage mistake. The type is taken
// from the path (lstat, or stat when symlinks may be followed), then the file is opened
// O_NONBLOCK and fstat must show the same inode, so swapping the path in between is caught.
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, stat } from 'node:fs/promises';
import type { CommonCode } from './common-codes.ts';
import { CommonError, errorMessage, type MilkyWayErrorOptions } from './error.ts';

export class FileError extends CommonError {}

/** Makes the calling part's error for one of common/'s codes or the part's own `C`. */
export type ErrorFactory<C extends string = never> = (
  code: CommonCode | C,
  message: string,
  options: MilkyWayErrorOptions,
) => Error;

export interface RegularFileOptions<C extends string = never> {
  /** Follow a symlink at `path` (a CLI argument) or refuse it (a file found in a directory). */
  followSymlinks?: boolean;
  /** What the file is, for messages ("certificate", "layer"). */
  what?: string;
  /** Code for a file that cannot be opened or read (ENOENT, EACCES, EIO); default E_FILE_READ. */
  readCode?: CommonCode | C;
  /** Makes the part's own error (KeysError, LayerError, …); default FileError. */
  error?: ErrorFactory<C>;
}

const fileError: ErrorFactory = (code, message, options) => new FileError(code, message, options);

/** "FIFO", "directory", … for an error message. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

/** Opens `path` read-only after checking it is a regular file; the caller closes the handle. */
export async function openRegularFile<C extends string = never>(
  path: string,
  o: RegularFileOptions<C> = {},
): Promise<{ fh: FileHandle; size: number }> {
  // Without a factory of the caller's part, its own codes (readCode) become FileErrors.
  const make = o.error ?? (fileError as ErrorFactory<C>);
  const what = o.what ?? 'file';
  const readCode: CommonCode | C = o.readCode ?? 'E_FILE_READ';
  const follow = o.followSymlinks !== false;
  const notRegular = (st: Stats): Error =>
    make('E_NOT_REGULAR_FILE', `Cannot read ${what} ${path}: it is a ${fileKind(st)}, not a regular file`, {
      path,
      details: { kind: fileKind(st) },
    });
  let before: Stats;
  try {
    before = follow ? await stat(path) : await lstat(path);
  } catch (e) {
    throw make(readCode, `Cannot read ${what} ${path}: ${errorMessage(e)}`, { path, cause: e });
  }
  if (!before.isFile()) throw notRegular(before);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW));
  } catch (e) {
    throw make(readCode, `Cannot open ${what} ${path}: ${errorMessage(e)}`, { path, cause: e });
  }
  try {
    const now = await fh.stat();
    if (!now.isFile()) throw notRegular(now);
    if (now.ino !== before.ino || now.dev !== before.dev) {
      throw make(readCode, `Cannot read ${what} ${path}: it was replaced while being opened`, { path });
    }
    return { fh, size: now.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Reads a whole regular file of at most `maxBytes` (checked on the open file before reading;
 * `tooLargeCode`, default E_FILE_TOO_LARGE). A file that grows while read is cut at the cap.
 */
export async function readRegularFile<C extends string = never>(
  path: string,
  o: RegularFileOptions<C> & { maxBytes?: number; tooLargeCode?: CommonCode | C } = {},
): Promise<Buffer> {
  const make = o.error ?? (fileError as ErrorFactory<C>);
  const what = o.what ?? 'file';
  const readCode: CommonCode | C = o.readCode ?? 'E_FILE_READ';
  const tooLarge: CommonCode | C = o.tooLargeCode ?? 'E_FILE_TOO_LARGE';
  const max = o.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const { fh, size } = await openRegularFile(path, o);
  try {
    if (size > max)
      throw make(tooLarge, `${what} ${path} is ${size} bytes, at most ${max} allowed`, { path });
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // One byte past the cap is read on purpose: that is how growth after the fstat shows.
      const room = max + 1 - total;
      const buf = Buffer.alloc(Math.min(room, Math.max(size - total + 1, 4096), 1 << 20));
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (e) {
        throw make(readCode, `Cannot read ${what} ${path}: ${errorMessage(e)}`, { path, cause: e });
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > max) throw make(tooLarge, `${what} ${path} grew past ${max} bytes while read`, { path });
    }
    return Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}
