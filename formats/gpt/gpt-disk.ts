// GPT disks (UEFI 2.10 §5.3): protective MBR, primary and backup headers with CRC32s,
// 128 entries, 512-byte sectors, partitions aligned to 1 MiB, written into a sparse file.
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import { view } from '../../common/index.ts';
import { guidFromBytes, guidToBytes, parseUuid } from '../guid.ts';
import { FormatError } from '../format-error.ts';
import {
  decodeAttributes,
  encodeAttributes,
  type PartitionAttributes,
  partitionTypeName,
} from './partition-types.ts';

export const SECTOR = 512;
const ENTRIES = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR;
const ALIGN = 2048n;
const HEADER_SIZE = 92;
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

function u32crc(b: Uint8Array): number {
  return crc32(b) >>> 0;
}

function encodeEntries(
  parts: Array<{ spec: GptPartitionSpec; first: bigint; last: bigint; uuid: string }>,
): Uint8Array {
  const out = new Uint8Array(ENTRIES * ENTRY_SIZE);
  parts.forEach((p, i) => {
    const e = out.subarray(i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE);
    const dv = view(e);
    e.set(guidToBytes(p.spec.type, 'partition type'), 0);
    e.set(guidToBytes(p.uuid, 'partition UUID'), 16);
    dv.setBigUint64(32, p.first, true);
    dv.setBigUint64(40, p.last, true);
    dv.setBigUint64(48, encodeAttributes(p.spec.attributes), true);
    const name = Buffer.from(p.spec.name, 'utf16le');
    if (name.length > 72)
      throw new FormatError(
        'E_GPT_BAD_NAME',
        `Cannot name partition ${JSON.stringify(p.spec.name)}: at most 36 UTF-16 units`,
      );
    e.set(name, 56);
  });
  return out;
}

function encodeHeader(
  my: bigint,
  alt: bigint,
  firstUsable: bigint,
  lastUsable: bigint,
  guid: string,
  entriesLba: bigint,
  entriesCrc: number,
): Uint8Array {
  const h = new Uint8Array(SECTOR);
  const dv = view(h);
  h.set(Buffer.from('EFI PART', 'latin1'), 0);
  dv.setUint32(8, 0x00010000, true);
  dv.setUint32(12, HEADER_SIZE, true);
  dv.setBigUint64(24, my, true);
  dv.setBigUint64(32, alt, true);
  dv.setBigUint64(40, firstUsable, true);
  dv.setBigUint64(48, lastUsable, true);
  h.set(guidToBytes(guid, 'disk GUID'), 56);
  dv.setBigUint64(72, entriesLba, true);
  dv.setUint32(80, ENTRIES, true);
  dv.setUint32(84, ENTRY_SIZE, true);
  dv.setUint32(88, entriesCrc, true);
  dv.setUint32(16, u32crc(h.subarray(0, HEADER_SIZE)), true);
  return h;
}

function protectiveMbr(totalSectors: bigint): Uint8Array {
  const m = new Uint8Array(SECTOR);
  const dv = view(m);
  m.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], 446);
  dv.setUint32(454, 1, true);
  const n = totalSectors - 1n;
  dv.setUint32(458, n > 0xffffffffn ? 0xffffffff : Number(n), true);
  m[510] = 0x55;
  m[511] = 0xaa;
  return m;
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
      for (let b = 0; b < n; b += 4096) {
        const blk = buf.subarray(b, Math.min(n, b + 4096));
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
  const ecrc = u32crc(entries);
  const tmp = `${diskPath}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    ftruncateSync(fd, Number(size));
    writeAt(fd, protectiveMbr(total), 0n);
    writeAt(fd, encodeHeader(1n, total - 1n, firstUsable, lastUsable, guid, 2n, ecrc), BigInt(SECTOR));
    writeAt(fd, entries, 2n * BigInt(SECTOR));
    const backupEntries = total - 1n - BigInt(ENTRY_SECTORS);
    writeAt(fd, entries, backupEntries * BigInt(SECTOR));
    writeAt(
      fd,
      encodeHeader(total - 1n, 1n, firstUsable, lastUsable, guid, backupEntries, ecrc),
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

function bad(code: string, message: string): FormatError {
  return new FormatError(code, message);
}

function readAt(fd: number, pos: bigint, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const n = readSync(fd, b, 0, len, Number(pos));
  if (n < len) throw bad('E_GPT_TRUNCATED', `Cannot read GPT: disk ends before byte ${pos + BigInt(len)}`);
  return b;
}

/** Decodes and checks a header sector and its entry array read from `fd`. */
function decodeAt(fd: number, lba: bigint, total: bigint): { h: DataView; entries: Uint8Array } {
  const sector = readAt(fd, lba * BigInt(SECTOR), SECTOR);
  const h = view(sector);
  if (Buffer.from(sector.subarray(0, 8)).toString('latin1') !== 'EFI PART')
    throw bad('E_GPT_MAGIC', `Cannot decode GPT header at LBA ${lba}: no "EFI PART" signature`);
  const hsize = h.getUint32(12, true);
  if (hsize < HEADER_SIZE || hsize > SECTOR)
    throw bad('E_GPT_HEADER_SIZE', `Cannot decode GPT header at LBA ${lba}: header size ${hsize}`);
  const stored = h.getUint32(16, true);
  const copy = sector.slice(0, hsize);
  view(copy).setUint32(16, 0, true);
  const crc = u32crc(copy);
  if (crc !== stored)
    throw bad(
      'E_GPT_HEADER_CRC',
      `Cannot decode GPT header at LBA ${lba}: CRC32 is 0x${stored.toString(16).padStart(8, '0')}, expected 0x${crc.toString(16).padStart(8, '0')}`,
    );
  if (h.getBigUint64(24, true) !== lba)
    throw bad(
      'E_GPT_HEADER_LBA',
      `Cannot decode GPT header at LBA ${lba}: it says it is at LBA ${h.getBigUint64(24, true)}`,
    );
  const count = h.getUint32(80, true);
  const esize = h.getUint32(84, true);
  if (count === 0 || count > 1024 || esize < 128 || esize > 1024 || esize % 8 !== 0)
    throw bad('E_GPT_ENTRY_SHAPE', `Cannot decode GPT entries: ${count} entries of ${esize} bytes`);
  const elba = h.getBigUint64(72, true);
  const bytes = count * esize;
  if (elba < 1n || elba + BigInt(Math.ceil(bytes / SECTOR)) > total)
    throw bad('E_GPT_ENTRY_RANGE', `Cannot decode GPT entries: LBA ${elba} is outside the disk`);
  const entries = readAt(fd, elba * BigInt(SECTOR), bytes);
  const ecrc = u32crc(entries);
  if (ecrc !== h.getUint32(88, true))
    throw bad(
      'E_GPT_ENTRIES_CRC',
      `Cannot decode GPT entries: CRC32 is 0x${h.getUint32(88, true).toString(16).padStart(8, '0')}, expected 0x${ecrc.toString(16).padStart(8, '0')}`,
    );
  return { h, entries };
}

/** Reads a GPT disk; falls back to the backup header when the primary is damaged. */
export async function readGpt(diskPath: string, options: ReadGptOptions = {}): Promise<GptDisk> {
  let fd: number;
  try {
    fd = openSync(diskPath, 'r');
  } catch (e) {
    throw new FormatError('E_GPT_OPEN', `Cannot open ${diskPath}: ${(e as Error).message}`, {
      path: diskPath,
      cause: e,
    });
  }
  try {
    const size = BigInt(fstatSync(fd).size);
    const total = size / BigInt(SECTOR);
    if (total < 67n)
      throw bad('E_GPT_TRUNCATED', `Cannot read GPT: ${size} bytes is too small for a GPT disk`);
    let usedBackup = false;
    let d: { h: DataView; entries: Uint8Array };
    try {
      d = decodeAt(fd, 1n, total);
    } catch (primary) {
      try {
        d = decodeAt(fd, total - 1n, total);
        usedBackup = true;
      } catch {
        throw primary;
      }
    }
    const { h, entries } = d;
    const firstUsable = h.getBigUint64(40, true);
    const lastUsable = h.getBigUint64(48, true);
    if (firstUsable > lastUsable || lastUsable >= total)
      throw bad(
        'E_GPT_USABLE_RANGE',
        `Cannot read GPT: usable LBAs ${firstUsable}..${lastUsable} on a disk of ${total} sectors`,
      );
    const esize = h.getUint32(84, true);
    const partitions: GptPartition[] = [];
    for (let i = 0; i < h.getUint32(80, true); i++) {
      const e = entries.subarray(i * esize, i * esize + 128);
      if (e.subarray(0, 16).every((b) => b === 0)) continue;
      const dv = view(e);
      const first = dv.getBigUint64(32, true);
      const last = dv.getBigUint64(40, true);
      if (first < firstUsable || last > lastUsable || last < first)
        throw bad(
          'E_GPT_PART_RANGE',
          `Cannot read GPT: partition ${i + 1} spans LBA ${first}..${last}, usable is ${firstUsable}..${lastUsable}`,
        );
      for (const p of partitions) {
        if (first <= p.lastLba && p.firstLba <= last)
          throw bad('E_GPT_OVERLAP', `Cannot read GPT: partition ${i + 1} overlaps partition ${p.index}`);
      }
      const nameRaw = Buffer.from(e.subarray(56, 128)).toString('utf16le');
      const nul = nameRaw.indexOf('\0');
      const type = guidFromBytes(e.subarray(0, 16));
      const attributes = dv.getBigUint64(48, true);
      partitions.push({
        index: i + 1,
        name: nul < 0 ? nameRaw : nameRaw.slice(0, nul),
        type,
        typeName: partitionTypeName(type, options.typeNames),
        uuid: guidFromBytes(e.subarray(16, 32)),
        firstLba: first,
        lastLba: last,
        sizeBytes: (last - first + 1n) * BigInt(SECTOR),
        attributes,
        flags: decodeAttributes(attributes),
      });
    }
    return {
      diskGuid: guidFromBytes(new Uint8Array(h.buffer, h.byteOffset + 56, 16)),
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
