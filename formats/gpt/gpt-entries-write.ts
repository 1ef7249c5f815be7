// Rewrites some fields of existing partition entries in place — name, unique GUID,
// attributes — in both GPT copies (UEFI 2.10 §5.3.2): the entries, each array's CRC32, each
// header's CRC32. An A/B update relabels the slot it wrote (`name_version`, GUIDs from the
// new root hash) and arms it; boot-slot counters (bootchain/slot.ts) change one attribute
// field. Backup array and header first, primary last, each followed by fsync, so a crash
// between the two leaves one copy old and one new, both valid; the C stage 1 does the same
// steps (bootchain/verifier/gpt.c). Every edit is applied to both copies in one pass, so a
// slot's three partitions change together.
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

export interface PartitionEntryEdit {
  /** 1-based entry index. */
  index: number;
  name?: string;
  uniqueGuid?: string;
  attributes?: bigint;
}

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
 * Applies `edits` to both GPT copies of `diskPath` (a disk image or a block device). Refuses,
 * writing nothing, when either copy does not decode, an entry is unused, or the copies
 * disagree on an edited entry before the edit.
 */
export function writePartitionEntries(diskPath: string, edits: readonly PartitionEntryEdit[]): void {
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
    // A block device's fstat size is 0: the primary header's alternate LBA says where the disk ends.
    const probe = decodeGptHeader(readAt(fd, BigInt(SECTOR), SECTOR), 1n, 2n ** 44n);
    const total = st.isFile() ? BigInt(st.size) / BigInt(SECTOR) : probe.alternateLba + 1n;
    const primary = decodeGptHeader(readAt(fd, BigInt(SECTOR), SECTOR), 1n, total);
    const backup = decodeGptHeader(
      readAt(fd, primary.alternateLba * BigInt(SECTOR), SECTOR),
      primary.alternateLba,
      total,
    );
    const copies = [backup, primary].map((h) => {
      const entries = readAt(fd, h.partitionEntryLba * BigInt(SECTOR), gptEntriesBytes(h));
      decodeGptEntries(h, entries); // checks the array CRC before we touch it
      return { h, entries };
    });
    const [b, p] = copies as [(typeof copies)[0], (typeof copies)[0]];
    for (const e of edits) {
      if (!Number.isInteger(e.index) || e.index < 1 || e.index > primary.numberOfEntries)
        throw new FormatError('E_GPT_PART_RANGE', `Cannot edit partition entry ${e.index}: no such entry`);
      const slice = (c: typeof b) =>
        c.entries.subarray((e.index - 1) * c.h.sizeOfEntry, (e.index - 1) * c.h.sizeOfEntry + GPT_ENTRY.size);
      if (GPT_ENTRY.raw(slice(p), 'typeGuid').every((x) => x === 0))
        throw new FormatError('E_GPT_PART_RANGE', `Cannot edit partition entry ${e.index}: it is unused`);
      if (!Buffer.from(slice(b)).equals(Buffer.from(slice(p))))
        throw new FormatError(
          'E_GPT_BACKUP',
          `Cannot edit partition ${e.index}: it differs between the primary and the backup GPT`,
        );
      if (e.name !== undefined && Buffer.byteLength(e.name, 'utf16le') > GPT_ENTRY.field('name').size)
        throw new FormatError(
          'E_GPT_BAD_NAME',
          `Cannot name partition ${JSON.stringify(e.name)}: at most 36 UTF-16 units`,
        );
    }
    for (const c of copies) {
      for (const e of edits) {
        const at = (e.index - 1) * c.h.sizeOfEntry;
        const entry = c.entries.subarray(at, at + GPT_ENTRY.size);
        if (e.name !== undefined) GPT_ENTRY.write(entry, 'name', e.name);
        if (e.uniqueGuid !== undefined) GPT_ENTRY.write(entry, 'uniqueGuid', e.uniqueGuid);
        if (e.attributes !== undefined)
          GPT_ENTRY.write(entry, 'attributes', BigInt.asUintN(64, e.attributes));
      }
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

/**
 * Sets partition `index`'s (1-based) attribute field to `attributes` in both GPT copies of
 * `diskPath`, with the same refusals as writePartitionEntries.
 */
export function writePartitionAttributes(diskPath: string, index: number, attributes: bigint): void {
  writePartitionEntries(diskPath, [{ index, attributes }]);
}
