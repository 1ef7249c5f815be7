// Writing a .mwl: the ustar members in order (mwl-tar.ts headers), either copied into a new
// file or around a payload that is shifted in place with `fallocate --insert-range`.
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Progress, run, writeFailure } from '../common/index.ts';
import { BLOCK_SIZE } from '../formats/index.ts';
import { LayerError } from './layer-error.ts';
import { BLOCK, encodeHeader, pad512 } from './mwl-tar.ts';

/** layer.json bytes: canonical JSON, spaces, '\n', sized so payload data starts 4096-aligned. */
export function manifestMember(canonical: Uint8Array): Buffer {
  // header(512) + pad512(len) + header(512) ≡ 0 (mod 4096)  ⇔  len ≡ 3072 (mod 4096), len > canonical.
  const need = canonical.length + 1;
  const tail = BLOCK_SIZE - 2 * BLOCK;
  const len = need <= tail ? tail : Math.ceil((need - tail) / BLOCK_SIZE) * BLOCK_SIZE + tail;
  const out = Buffer.alloc(len, 0x20);
  out.set(canonical, 0);
  out[len - 1] = 0x0a;
  return out;
}

export type MwlMember = {
  name: string;
  size: number;
  data?: Uint8Array;
  file?: string;
  /** The data already sits at its offset in the output (the payload shifted in place). */
  placed?: boolean;
};

/** Writes `members` and the end-of-archive blocks from byte 0 of `fh`; returns the length. */
async function writeMembers(
  fh: FileHandle,
  members: readonly MwlMember[],
  mtime: number,
  progress?: Progress,
): Promise<number> {
  let pos = 0;
  const put = async (b: Uint8Array) => {
    let done = 0;
    while (done < b.length) done += (await fh.write(b, done, b.length - done, pos + done)).bytesWritten;
    pos += b.length;
  };
  for (const m of members) {
    await put(encodeHeader(m.name, m.size, mtime));
    if (m.placed === true) pos += m.size;
    else if (m.data !== undefined) await put(m.data);
    else if (m.file !== undefined) {
      progress?.step(`writing ${m.name}`);
      let copied = 0;
      for await (const chunk of createReadStream(m.file, { highWaterMark: 4 << 20 })) {
        await put(chunk as Buffer);
        copied += (chunk as Buffer).length;
        progress?.bytes(copied, m.size);
      }
      if (copied !== m.size) throw new LayerError('E_PACK_INPUT', `${m.file} changed size while packing`);
    }
    const padding = pad512(m.size) - m.size;
    if (padding > 0) await put(new Uint8Array(padding));
  }
  await put(new Uint8Array(2 * BLOCK));
  return pos;
}

/**
 * Shifts the payload file's data by `length` (a multiple of 4096) to leave a hole at the front
 * for the tar prefix; false where the file system lacks it (tmpfs, btrfs). Measured against
 * writing the payload into a new .mwl during the hashing pass: the kernel's flush of the
 * dirty payload costs less than copying 256 MiB on a busy 2-core machine (doc/performance.md).
 */
async function insertRange(file: string, length: number, onSpawn?: () => void): Promise<boolean> {
  try {
    await run('fallocate', ['--insert-range', '--offset', '0', '--length', String(length), file], {
      timeout: 60_000,
      ...(onSpawn === undefined ? {} : { onSpawn }),
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts writing `file`'s dirty pages to disk and resolves when they are (never rejects: a
 * failure only means insert-range flushes them itself). ext4's insert-range must write back
 * and drop the whole file's page cache before it shifts the data; started as soon as
 * mkfs.erofs is done, that write-back runs on the I/O path while the verity pass hashes the
 * same pages from the cache, instead of after it with nothing else to do (doc/performance.md).
 */
/**
 * Writes `file` back over and over while `running()` holds (pack: while mkfs.erofs is still
 * writing it), so the flush insert-range needs is mostly done when the file is complete instead
 * of starting then. The file may not exist yet (the program creates it). Errors are ignored:
 * insert-range does the write-back itself.
 */
export async function writeBackWhile(file: string, running: () => boolean): Promise<void> {
  const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  let fh: FileHandle | undefined;
  try {
    while (running() && fh === undefined) {
      fh = await open(file, 'r').catch(() => undefined);
      if (fh === undefined) await pause(10);
    }
    while (running() && fh !== undefined) {
      await fh.datasync();
      await pause(20);
    }
  } catch {
    // see above
  } finally {
    await fh?.close();
  }
}

export async function startWriteBack(file: string): Promise<void> {
  try {
    const fh = await open(file, 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  } catch {
    // insert-range does the write-back itself
  }
}

function tempPath(out: string): string {
  return join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
}

async function renameInto(tmp: string, out: string): Promise<void> {
  try {
    await rename(tmp, out);
  } catch (e) {
    throw new LayerError('E_LAYER_WRITE', `Cannot write ${out}: ${writeFailure(e)}`, {
      path: out,
      cause: e,
    });
  }
}

/** Writes `members` as a .mwl to `out` atomically (temp + rename). */
export async function writeMwl(
  out: string,
  members: { name: string; data?: Uint8Array; file?: string; size: number }[],
  mtime: number,
  progress?: Progress,
): Promise<void> {
  const tmp = tempPath(out);
  const fh = await open(tmp, 'w', 0o644);
  let ok = false;
  try {
    await writeMembers(fh, members, mtime, progress);
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(tmp, { force: true });
  }
  try {
    await renameInto(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Where the payload's data starts in a .mwl whose `layer.json` member is `manifestSize` bytes. */
export function payloadOffsetFor(manifestSize: number): number {
  return BLOCK + pad512(manifestSize) + BLOCK;
}

/**
 * Shifts `payloadFile`'s data to `offset` (the first step of the in-place writer), leaving a
 * hole for the tar prefix; false (nothing changed) where the file system lacks insert-range
 * or the offset is not 4096-aligned. `onSpawn` is called once `fallocate` runs: the kernel
 * then drops the payload's page cache (most of this step's cost), and pack signs meanwhile.
 */
export function shiftPayload(payloadFile: string, offset: number, onSpawn?: () => void): Promise<boolean> {
  if (offset % BLOCK_SIZE !== 0) return Promise.resolve(false);
  return insertRange(payloadFile, offset, onSpawn);
}

/**
 * Turns `payloadFile` itself into the .mwl `out`: `shiftPayload` leaves a hole for the tar
 * prefix in front of the payload's data, the prefix and the members after the payload are
 * written around it, and the file is renamed. False (nothing changed) where the file system
 * lacks insert-range; the caller then copies with `writeMwl`, which gives the same bytes.
 */
export async function writeMwlInPlace(
  payloadFile: string,
  out: string,
  members: readonly MwlMember[],
  mtime: number,
): Promise<boolean> {
  const [first, payload] = members;
  if (first?.data === undefined || payload?.file !== payloadFile) return false;
  const offset = payloadOffsetFor(first.size);
  if (!(await shiftPayload(payloadFile, offset))) return false;
  await writeAroundPayload(payloadFile, offset, out, members, mtime);
  return true;
}

/**
 * The second step: with the payload already shifted to `offset` (`shiftPayload`), writes the
 * other members and the tar framing around it and renames the file to `out`.
 */
export async function writeAroundPayload(
  payloadFile: string,
  offset: number,
  out: string,
  members: readonly MwlMember[],
  mtime: number,
): Promise<void> {
  const [first, payload] = members;
  if (payload?.file !== payloadFile || first === undefined || payloadOffsetFor(first.size) !== offset)
    throw new RangeError(`Expected ${payloadFile} as the second member, shifted to where layer.json puts it`);
  const fh = await open(payloadFile, 'r+');
  try {
    await writeMembers(
      fh,
      members.map((m) => (m === payload ? { ...m, placed: true } : m)),
      mtime,
    );
  } finally {
    await fh.close();
  }
  await renameInto(payloadFile, out);
}
