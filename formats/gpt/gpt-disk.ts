// GPT disks (UEFI 2.10 §5.3): protective MBR, primary and backup headers with CRC32s,
// 128 entries, 512-byte sectors, partitions aligned to 1 MiB, written into a sparse file.
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { BLOCK_SIZE } from '../block-size.ts';
import type { FormatCode } from '../format-codes.ts';
import { FormatError } from '../format-error.ts';
import { parseUuid } from '../guid.ts';
import {
  decodeGptEntries,
  decodeGptHeader,
  encodeGptEntry,
  encodeGptHeader,
  encodeProtectiveMbr,
  GPT_ENTRY_SIZE,
  type GptHeader,
  gptEntriesBytes,
  gptEntriesCrc,
  SECTOR,
} from './gpt-header.ts';
import {
  decodeAttributes,
  encodeAttributes,
  type PartitionAttributes,
  partitionTypeName,
} from './partition-types.ts';

export { SECTOR };
/** Entries we write (the UEFI minimum array of 16 KiB). */
const ENTRIES = 128;
const ENTRY_SECTORS = (ENTRIES * GPT_ENTRY_SIZE) / SECTOR;
/** Partitions start at 1 MiB boundaries. */
const ALIGN = 2048n;
/** 16 TiB: bigger disks are not something we build. */
const MAX_DISK = 2n ** 44n;

export interface GptPartitionSpec {
  name: string;
  /** Type GUID. */
  type: string;
  uuid?: string;
  sizeBytes: number;
  attributes?: PartitionAttributes;
  /** File copied into the partition (holes kept). */
  image?: string;
}

export interface GptPartition {
  index: number;
  name: string;
  type: string;
  typeName: string | undefined;
  uuid: string;
  firstLba: bigint;
  lastLba: bigint;
  sizeBytes: bigint;
  attributes: bigint;
  flags: Required<PartitionAttributes>;
}

export interface ReadGptOptions {
  /**
   * Names for type GUIDs, shown as `typeName` (default: the DPS table). A disk format with
   * its own types (MilkyWayLinux's) passes its table.
   */
  typeNames?: Readonly<Record<string, string>>;
  /** Lets a block device be read: its size in bytes (from /sys/class/block/NAME/size). */
  deviceBytes?: bigint;
}

export interface GptDisk {
  diskGuid: string;
  sizeBytes: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  partitions: GptPartition[];
  /** True when the primary header was damaged and the backup was used. */
  usedBackup: boolean;
}

function encodeEntries(
  parts: Array<{ spec: GptPartitionSpec; first: bigint; last: bigint; uuid: string }>,
): Uint8Array {
  const out = new Uint8Array(ENTRIES * GPT_ENTRY_SIZE);
  parts.forEach((p, i) => {
    const entry = encodeGptEntry({
      typeGuid: p.spec.type,
      uniqueGuid: p.uuid,
      startingLba: p.first,
      endingLba: p.last,
      attributes: encodeAttributes(p.spec.attributes),
      name: p.spec.name,
    });
    out.set(entry, i * GPT_ENTRY_SIZE);
  });
  return out;
}

function header(
  my: bigint,
  alt: bigint,
  firstUsable: bigint,
  lastUsable: bigint,
  guid: string,
  entriesLba: bigint,
  entriesCrc: number,
): Uint8Array {
  return encodeGptHeader({
    myLba: my,
    alternateLba: alt,
    firstUsableLba: firstUsable,
    lastUsableLba: lastUsable,
    diskGuid: guid,
    partitionEntryLba: entriesLba,
    numberOfEntries: ENTRIES,
    sizeOfEntry: GPT_ENTRY_SIZE,
    entriesCrc32: entriesCrc,
  });
}

function writeAt(fd: number, b: Uint8Array, pos: bigint): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done, Number(pos) + done);
}

/**
 * Copies `image` to byte `pos` of `fd`, writing only non-zero 4 KiB blocks so holes stay
 * holes; `onChunk` gets the bytes read per chunk.
 */
function copySparse(
  fd: number,
  image: string,
  pos: bigint,
  max: bigint,
  onChunk: (bytes: number) => void,
): void {
  const src = openSync(image, 'r');
  try {
    const size = BigInt(fstatSync(src).size);
    if (size > max)
      throw new FormatError(
        'E_GPT_IMAGE_TOO_BIG',
        `Cannot place ${image}: ${size} bytes, partition has ${max}`,
        { path: image },
      );
    const buf = Buffer.alloc(1 << 20);
    let off = 0;
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, off);
      if (n === 0) break;
      for (let b = 0; b < n; b += BLOCK_SIZE) {
        const blk = buf.subarray(b, Math.min(n, b + BLOCK_SIZE));
        if (blk.some((x) => x !== 0)) writeAt(fd, blk, pos + BigInt(off + b));
      }
      off += n;
      onChunk(n);
    }
  } finally {
    closeSync(src);
  }
}

/** Writes a GPT disk of `sizeBytes` (sparse) with `partitions` in order, each at a 1 MiB boundary. */
export async function writeGpt(
  diskPath: string,
  options: {
    sizeBytes: number;
    partitions: GptPartitionSpec[];
    diskGuid?: string;
    /** Called as partition images are copied in: bytes copied so far, total bytes of all images. */
    onProgress?: (copiedBytes: number, totalBytes: number) => void;
  } & ReadGptOptions,
): Promise<GptDisk> {
  const size = BigInt(options.sizeBytes);
  if (
    !Number.isSafeInteger(options.sizeBytes) ||
    size % ALIGN !== 0n ||
    size < 4n << 20n ||
    size > MAX_DISK
  ) {
    throw new FormatError(
      'E_GPT_BAD_SIZE',
      `Cannot make a disk of ${options.sizeBytes} bytes: expected a multiple of 1 MiB from 4 MiB to 16 TiB`,
    );
  }
  if (options.partitions.length > ENTRIES)
    throw new FormatError(
      'E_GPT_TOO_MANY',
      `Cannot write ${options.partitions.length} partitions: at most 128`,
    );
  const total = size / BigInt(SECTOR);
  const firstUsable = 2n + BigInt(ENTRY_SECTORS);
  const lastUsable = total - 2n - BigInt(ENTRY_SECTORS);
  let cursor = ALIGN;
  const placed = options.partitions.map((spec) => {
    if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes <= 0 || spec.sizeBytes % SECTOR !== 0) {
      throw new FormatError(
        'E_GPT_BAD_SIZE',
        `Cannot make partition ${spec.name} of ${spec.sizeBytes} bytes: expected a positive multiple of 512`,
      );
    }
    const first = ((cursor + ALIGN - 1n) / ALIGN) * ALIGN;
    const last = first + BigInt(spec.sizeBytes / SECTOR) - 1n;
    if (last > lastUsable)
      throw new FormatError(
        'E_GPT_NO_SPACE',
        `Cannot fit partition ${spec.name}: it would end at LBA ${last}, last usable is ${lastUsable}`,
      );
    cursor = last + 1n;
    parseUuid(spec.type, 'partition type');
    return {
      spec,
      first,
      last,
      uuid: spec.uuid === undefined ? randomUUID() : parseUuid(spec.uuid, 'partition UUID'),
    };
  });
  const guid = options.diskGuid === undefined ? randomUUID() : parseUuid(options.diskGuid, 'disk GUID');
  const entries = encodeEntries(placed);
  const ecrc = gptEntriesCrc(entries);
  const tmp = `${diskPath}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    ftruncateSync(fd, Number(size));
    writeAt(fd, encodeProtectiveMbr(total), 0n);
    writeAt(fd, header(1n, total - 1n, firstUsable, lastUsable, guid, 2n, ecrc), BigInt(SECTOR));
    writeAt(fd, entries, 2n * BigInt(SECTOR));
    const backupEntries = total - 1n - BigInt(ENTRY_SECTORS);
    writeAt(fd, entries, backupEntries * BigInt(SECTOR));
    writeAt(
      fd,
      header(total - 1n, 1n, firstUsable, lastUsable, guid, backupEntries, ecrc),
      (total - 1n) * BigInt(SECTOR),
    );
    let imageBytes = 0;
    for (const p of placed) if (p.spec.image !== undefined) imageBytes += statSync(p.spec.image).size;
    let copied = 0;
    const onChunk = (n: number) => {
      copied += n;
      options.onProgress?.(copied, imageBytes);
    };
    for (const p of placed) {
      if (p.spec.image !== undefined)
        copySparse(
          fd,
          p.spec.image,
          p.first * BigInt(SECTOR),
          (p.last - p.first + 1n) * BigInt(SECTOR),
          onChunk,
        );
    }
    ok = true;
  } finally {
    closeSync(fd);
    if (ok) renameSync(tmp, diskPath);
    else rmSync(tmp, { force: true });
  }
  return readGpt(diskPath, options.typeNames === undefined ? {} : { typeNames: options.typeNames });
}

function bad(code: FormatCode, message: string): FormatError {
  return new FormatError(code, message);
}

function readAt(fd: number, pos: bigint, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const n = readSync(fd, b, 0, len, Number(pos));
  if (n < len) throw bad('E_GPT_TRUNCATED', `Cannot read GPT: disk ends before byte ${pos + BigInt(len)}`);
  return b;
}

/** Reads, decodes and checks the header sector at `lba` and its entry array. */
export function decodeGptAt(
  fd: number,
  lba: bigint,
  total: bigint,
): { h: GptHeader; entries: ReturnType<typeof decodeGptEntries> } {
  const h = decodeGptHeader(readAt(fd, lba * BigInt(SECTOR), SECTOR), lba, total);
  const bytes = readAt(fd, h.partitionEntryLba * BigInt(SECTOR), gptEntriesBytes(h));
  return { h, entries: decodeGptEntries(h, bytes) };
}

/** Reads a GPT disk; falls back to the backup header when the primary is damaged. */
export async function readGpt(diskPath: string, options: ReadGptOptions = {}): Promise<GptDisk> {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO named as the disk must not wait for a writer.
    fd = openSync(diskPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FormatError('E_GPT_OPEN', `Cannot open ${diskPath}: ${(e as Error).message}`, {
      path: diskPath,
      cause: e,
    });
  }
  try {
    const st = fstatSync(fd);
    // A block device's fstat size is 0: its size comes from the caller (sysfs), never guessed.
    const device = st.isBlockDevice() && options.deviceBytes !== undefined;
    if (!st.isFile() && !device)
      throw new FormatError(
        'E_NOT_REGULAR_FILE',
        `Cannot read GPT: ${diskPath} is not a regular file (a disk image)`,
        {
          path: diskPath,
        },
      );
    const size = device ? (options.deviceBytes as bigint) : BigInt(st.size);
    const total = size / BigInt(SECTOR);
    if (total < 67n)
      throw bad('E_GPT_TRUNCATED', `Cannot read GPT: ${size} bytes is too small for a GPT disk`);
    let usedBackup = false;
    let d: ReturnType<typeof decodeGptAt>;
    try {
      d = decodeGptAt(fd, 1n, total);
    } catch (primary) {
      try {
        d = decodeGptAt(fd, total - 1n, total);
        usedBackup = true;
      } catch {
        throw primary;
      }
    }
    const { h, entries } = d;
    const firstUsable = h.firstUsableLba;
    const lastUsable = h.lastUsableLba;
    if (firstUsable > lastUsable || lastUsable >= total)
      throw bad(
        'E_GPT_USABLE_RANGE',
        `Cannot read GPT: usable LBAs ${firstUsable}..${lastUsable} on a disk of ${total} sectors`,
      );
    const partitions: GptPartition[] = [];
    for (const e of entries) {
      const first = e.startingLba;
      const last = e.endingLba;
      if (first < firstUsable || last > lastUsable || last < first)
        throw bad(
          'E_GPT_PART_RANGE',
          `Cannot read GPT: partition ${e.index} spans LBA ${first}..${last}, usable is ${firstUsable}..${lastUsable}`,
        );
      for (const p of partitions) {
        if (first <= p.lastLba && p.firstLba <= last)
          throw bad('E_GPT_OVERLAP', `Cannot read GPT: partition ${e.index} overlaps partition ${p.index}`);
      }
      partitions.push({
        index: e.index,
        name: e.name,
        type: e.typeGuid,
        typeName: partitionTypeName(e.typeGuid, options.typeNames),
        uuid: e.uniqueGuid,
        firstLba: first,
        lastLba: last,
        sizeBytes: (last - first + 1n) * BigInt(SECTOR),
        attributes: e.attributes,
        flags: decodeAttributes(e.attributes),
      });
    }
    return {
      diskGuid: h.diskGuid,
      sizeBytes: size,
      firstUsableLba: firstUsable,
      lastUsableLba: lastUsable,
      partitions,
      usedBackup,
    };
  } finally {
    closeSync(fd);
  }
}
