// Rewrites one partition's 64-bit attribute field in place, in both GPT copies (UEFI 2.10
// §5.3.2): the entry in each array, each array's CRC32, each header's CRC32. The backup is
// written first and the primary last, each followed by fsync, so a crash between the two
// leaves a disk whose primary still describes the old state and whose backup the new one —
// both valid. Boot-slot counters (bootchain/slot.ts) change this way; the C stage 1 does the
// same steps (bootchain/verifier/gpt.c), tested against this writer and against sgdisk.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { FormatError } from '../format-error.ts';
import {
  decodeGptEntries,
  decodeGptHeader,
  GPT_ENTRY,
  GPT_HEADER,
  gptEntriesBytes,
  gptEntriesCrc,
  SECTOR,
} from './gpt-header.ts';

function readAt(fd: number, pos: bigint, len: number): Uint8Array {
  const b = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, Number(pos) + got);
    if (n === 0) throw new FormatError('E_GPT_TRUNCATED', `Cannot read GPT: disk ends before byte ${pos}`);
    got += n;
  }
  return b;
}

function writeAt(fd: number, b: Uint8Array, pos: bigint): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done, Number(pos) + done);
}

/**
 * Sets partition `index`'s (1-based) attribute field to `attributes` in both GPT copies of
 * `diskPath` (a disk image or a block device). Refuses, writing nothing, when either copy
 * does not decode or the two disagree on that entry (a disk the reader would not trust).
 */
export function writePartitionAttributes(diskPath: string, index: number, attributes: bigint): void {
  let fd: number;
  try {
    fd = openSync(diskPath, 'r+');
  } catch (e) {
    throw new FormatError('E_GPT_OPEN', `Cannot open ${diskPath} for writing: ${(e as Error).message}`, {
      path: diskPath,
      cause: e,
    });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice())
      throw new FormatError('E_NOT_REGULAR_FILE', `Cannot write GPT: ${diskPath} is not a disk image`, {
        path: diskPath,
      });
    const total = BigInt(st.size) / BigInt(SECTOR);
    const primary = decodeGptHeader(readAt(fd, BigInt(SECTOR), SECTOR), 1n, total);
    const backup = decodeGptHeader(
      readAt(fd, primary.alternateLba * BigInt(SECTOR), SECTOR),
      primary.alternateLba,
      total,
    );
    const copies = [backup, primary].map((h) => {
      const entries = readAt(fd, h.partitionEntryLba * BigInt(SECTOR), gptEntriesBytes(h));
      decodeGptEntries(h, entries); // checks the array CRC before we touch it
      if (index < 1 || index > h.numberOfEntries)
        throw new FormatError('E_GPT_PART_RANGE', `Cannot set attributes: no partition entry ${index}`);
      const at = (index - 1) * h.sizeOfEntry;
      const entry = entries.subarray(at, at + GPT_ENTRY.size);
      if (GPT_ENTRY.raw(entry, 'typeGuid').every((b) => b === 0))
        throw new FormatError(
          'E_GPT_PART_RANGE',
          `Cannot set attributes: partition entry ${index} is unused`,
        );
      return { h, entries, entry };
    });
    const [b, p] = copies as [(typeof copies)[0], (typeof copies)[0]];
    if (!Buffer.from(b.entry).equals(Buffer.from(p.entry)))
      throw new FormatError(
        'E_GPT_BACKUP',
        `Cannot set attributes: partition ${index} differs between the primary and the backup GPT`,
      );
    for (const c of copies) {
      GPT_ENTRY.write(c.entry, 'attributes', BigInt.asUintN(64, attributes));
      const sector = readAt(fd, c.h.myLba * BigInt(SECTOR), SECTOR);
      GPT_HEADER.write(sector, 'entriesCrc32', gptEntriesCrc(c.entries));
      GPT_HEADER.write(sector, 'headerCrc32', 0);
      GPT_HEADER.write(sector, 'headerCrc32', gptEntriesCrc(sector.subarray(0, c.h.headerSize)));
      writeAt(fd, c.entries, c.h.partitionEntryLba * BigInt(SECTOR));
      writeAt(fd, sector, c.h.myLba * BigInt(SECTOR));
      fsyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
}
