// What the FAT and ISO 9660 readers share: a volume is read through `readAt` (a block device
// or an image file, never mounted), every read is bounded, and every failure is one
// FormatError code, E_FS_UNREADABLE, naming the volume and the check that failed.
import type { FileHandle } from 'node:fs/promises';
import { FormatError } from '../format-error.ts';

/** Reads `length` bytes at `offset`; fewer bytes back means the volume ends there. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/** A volume's file system and label, as blkid would name them. */
export interface VolumeInfo {
  type: 'vfat' | 'iso9660';
  label: string;
}

/** Files read from a volume's root directory, by the name asked for. */
export type RootFiles = Map<string, Uint8Array>;

export interface RootFileOptions {
  /** Largest file read (a bigger one is E_FS_UNREADABLE, nothing of it read). */
  maxBytes: number;
  /** Names the volume is called in messages. */
  source?: string;
}

/** `readAt` over an open file (an image file or a block device). */
export function fileReadAt(handle: FileHandle): ReadAt {
  return async (offset, length) => {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out.subarray(0, done);
  };
}

/** `readAt` over bytes in memory (tests, small images). */
export function bytesReadAt(bytes: Uint8Array): ReadAt {
  return async (offset, length) => bytes.subarray(Math.min(offset, bytes.length), offset + length);
}

export function unreadable(source: string | undefined, what: string): FormatError {
  return new FormatError('E_FS_UNREADABLE', `Cannot read volume ${source ?? '(unnamed)'}: ${what}`, {
    ...(source === undefined ? {} : { path: source }),
  });
}

/** `readAt` that refuses short reads: every byte asked for must be on the volume. */
export async function readExactly(
  readAt: ReadAt,
  offset: number,
  length: number,
  source: string | undefined,
  what: string,
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
    throw unreadable(source, `${what} at offset ${offset} is outside the volume`);
  const b = await readAt(offset, length);
  if (b.length !== length)
    throw unreadable(source, `${what} at offset ${offset} is past the end of the volume`);
  return b;
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A fixed-width on-disk text field (FAT labels, ISO 9660 a-/d-characters): Latin-1, its space or NUL padding dropped. */
export function paddedText(b: Uint8Array): string {
  return Buffer.from(b)
    .toString('latin1')
    .replace(/[ \0]+$/, '');
}
