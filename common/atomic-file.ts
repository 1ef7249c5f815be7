// Whole-file replacement that survives a crash or a power cut: the bytes go to a temporary
// file in the same directory, are fsynced, get their final mode, and are renamed over the
// target; the directory is fsynced so the rename itself is durable. A reader sees the old
// file or the new one, never half of one, and a failure leaves no temporary file behind.
// A path that cannot be written (a directory where the file goes, a file where a directory
// must be, no permission, a read-only or full file system) is E_FILE_WRITE naming the path the
// caller gave, never a raw errno naming a temporary file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, type MilkyWayErrorOptions } from './error.ts';
import { type ErrorFactory, FileError } from './regular-file.ts';

export interface OutputOptions<C extends string = never> {
  /** What the output is, for messages ("signature file", "CRL"). */
  what?: string;
  /** Makes the calling part's error (KeysError, LayerError, …); default FileError. */
  error?: ErrorFactory<C>;
}

const fileError: ErrorFactory = (code, message, options) => new FileError(code, message, options);

/** Why a write failed, in words, from the errno of `e` (its message when the errno says nothing). */
export function writeFailure(e: unknown): string {
  switch ((e as NodeJS.ErrnoException).code) {
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOENT':
      return 'its directory does not exist';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'EEXIST':
      return 'a file is in the way';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no space left on the file system';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return errorMessage(e);
  }
}

function writeError<C extends string>(o: OutputOptions<C>, verb: string, path: string, e: unknown): Error {
  const make = o.error ?? (fileError as ErrorFactory<C>);
  const options: MilkyWayErrorOptions = { path, cause: e };
  return make('E_FILE_WRITE', `Cannot ${verb} ${o.what ?? 'file'} ${path}: ${writeFailure(e)}`, options);
}

/**
 * Creates `dir` and its parents for output. `mode` applies to the directories made (the umask
 * can only take bits from it); an existing directory is left as it is.
 */
export async function makeOutputDir<C extends string = never>(
  dir: string,
  o: OutputOptions<C> & { mode?: number } = {},
): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, ...(o.mode === undefined ? {} : { mode: o.mode }) });
  } catch (e) {
    throw writeError({ ...o, what: o.what ?? 'directory' }, 'create', dir, e);
  }
}

/** Writes `data` to `path` atomically with exactly `mode` (the umask does not apply). */
export async function writeFileAtomic<C extends string = never>(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
  o: OutputOptions<C> = {},
): Promise<void> {
  const dir = dirname(path);
  await makeOutputDir(dir, o.error === undefined ? {} : { error: o.error });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // Said before any byte is written: a directory at `path` would fail only at the rename.
    if ((await stat(path).catch(() => undefined))?.isDirectory() === true)
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(o, 'write', path, e);
  }
  await syncDirectory(dir);
}

/** fsync of a directory, so a rename or create in it reaches the disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch {
    // Some filesystems (tmpfs, 9p) refuse fsync on a directory; nothing more can be done there.
  } finally {
    await d.close();
  }
}

/** Writes `value` as one line of JSON with writeFileAtomic (small state files). */
export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`, mode);
}
