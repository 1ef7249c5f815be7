// The GPT header and partition entry (UEFI 2.10 §5.3.2 Table 5-5, §5.3.3 Table 5-6), each
// declared once as a field table; the pure encoders and decoders here are derived from them.
// The decoders check length, signature, header size and CRC32 before trusting any field.
import { crc32 } from 'node:zlib';
import { fieldTable } from '../_field-table.ts';
import type { FormatCode } from '../format-codes.ts';
import { FormatError } from '../format-error.ts';

export const SECTOR = 512;
/** The header fields the CRC covers (UEFI: HeaderSize is 92 for revision 1.0). */
export const GPT_HEADER_SIZE = 92;
export const GPT_ENTRY_SIZE = 128;
export const GPT_SIGNATURE = 'EFI PART';
/** Revision 1.0. */
const REVISION = 0x00010000;
/** Counts and sizes a reader accepts from a foreign disk (UEFI allows more than we write). */
const MAX_ENTRIES = 1024;
const MAX_ENTRY_SIZE = 1024;

const H = 'UEFI 2.10 §5.3.2 Table 5-5';
export const GPT_HEADER = fieldTable('GPT header', GPT_HEADER_SIZE, [
  { name: 'signature', offset: 0, size: 8, type: 'text', value: GPT_SIGNATURE, spec: `${H}: Signature` },
  { name: 'revision', offset: 8, size: 4, type: 'u32', value: REVISION, spec: `${H}: Revision` },
  { name: 'headerSize', offset: 12, size: 4, type: 'u32', value: GPT_HEADER_SIZE, spec: `${H}: HeaderSize` },
  { name: 'headerCrc32', offset: 16, size: 4, type: 'u32', value: 0, spec: `${H}: HeaderCRC32` },
  { name: 'reserved', offset: 20, size: 4, type: 'reserved', spec: `${H}: Reserved` },
  { name: 'myLba', offset: 24, size: 8, type: 'u64', spec: `${H}: MyLBA` },
  { name: 'alternateLba', offset: 32, size: 8, type: 'u64', spec: `${H}: AlternateLBA` },
  { name: 'firstUsableLba', offset: 40, size: 8, type: 'u64', spec: `${H}: FirstUsableLBA` },
  { name: 'lastUsableLba', offset: 48, size: 8, type: 'u64', spec: `${H}: LastUsableLBA` },
  { name: 'diskGuid', offset: 56, size: 16, type: 'guid', spec: `${H}: DiskGUID` },
  { name: 'partitionEntryLba', offset: 72, size: 8, type: 'u64', spec: `${H}: PartitionEntryLBA` },
  { name: 'numberOfEntries', offset: 80, size: 4, type: 'u32', spec: `${H}: NumberOfPartitionEntries` },
  { name: 'sizeOfEntry', offset: 84, size: 4, type: 'u32', spec: `${H}: SizeOfPartitionEntry` },
  { name: 'entriesCrc32', offset: 88, size: 4, type: 'u32', spec: `${H}: PartitionEntryArrayCRC32` },
]);

const E = 'UEFI 2.10 §5.3.3 Table 5-6';
export const GPT_ENTRY = fieldTable('GPT partition entry', GPT_ENTRY_SIZE, [
  { name: 'typeGuid', offset: 0, size: 16, type: 'guid', spec: `${E}: PartitionTypeGUID` },
  { name: 'uniqueGuid', offset: 16, size: 16, type: 'guid', spec: `${E}: UniquePartitionGUID` },
  { name: 'startingLba', offset: 32, size: 8, type: 'u64', spec: `${E}: StartingLBA` },
  { name: 'endingLba', offset: 40, size: 8, type: 'u64', spec: `${E}: EndingLBA` },
  { name: 'attributes', offset: 48, size: 8, type: 'u64', spec: `${E}: Attributes` },
  { name: 'name', offset: 56, size: 72, type: 'utf16', spec: `${E}: PartitionName (36 UTF-16 units)` },
]);

const M = 'UEFI 2.10 §5.2.3 Table 5-4 (protective MBR)';
/** LBA 0: one partition record of type 0xEE covering the disk, so MBR tools leave it alone. */
export const PROTECTIVE_MBR = fieldTable('protective MBR', SECTOR, [
  { name: 'bootCode', offset: 0, size: 446, type: 'reserved', spec: `${M}: BootCode, signature, Unknown` },
  { name: 'bootIndicator', offset: 446, size: 1, type: 'u8', value: 0, spec: `${M}: record 1 BootIndicator` },
  { name: 'startingChs', offset: 447, size: 3, type: 'bytes', spec: `${M}: StartingCHS (0x000200)` },
  { name: 'osType', offset: 450, size: 1, type: 'u8', value: 0xee, spec: `${M}: OSType (GPT protective)` },
  { name: 'endingChs', offset: 451, size: 3, type: 'bytes', spec: `${M}: EndingCHS (0xFFFFFF)` },
  { name: 'startingLba', offset: 454, size: 4, type: 'u32', value: 1, spec: `${M}: StartingLBA` },
  {
    name: 'sizeInLba',
    offset: 458,
    size: 4,
    type: 'u32',
    spec: `${M}: SizeInLBA (disk − 1, at most 2^32−1)`,
  },
  { name: 'otherRecords', offset: 462, size: 48, type: 'reserved', spec: `${M}: records 2–4 (zero)` },
  { name: 'signature', offset: 510, size: 2, type: 'u16', value: 0xaa55, spec: `${M}: Signature` },
]);

export type GptHeader = ReturnType<typeof GPT_HEADER.decode>;
export type GptEntry = ReturnType<typeof GPT_ENTRY.decode>;

function u32crc(b: Uint8Array): number {
  return crc32(b) >>> 0;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function bad(code: FormatCode, message: string): FormatError {
  return new FormatError(code, message);
}

/** One header sector (zero-padded to 512 bytes) with its CRC32 filled in. */
export function encodeGptHeader(
  h: Omit<GptHeader, 'signature' | 'revision' | 'headerSize' | 'headerCrc32'>,
): Uint8Array {
  const sector = new Uint8Array(SECTOR);
  sector.set(GPT_HEADER.encode(h), 0);
  GPT_HEADER.write(sector, 'headerCrc32', u32crc(sector.subarray(0, GPT_HEADER_SIZE)));
  return sector;
}

/** The protective MBR of a disk of `totalSectors`. */
export function encodeProtectiveMbr(totalSectors: bigint): Uint8Array {
  const n = totalSectors - 1n;
  return PROTECTIVE_MBR.encode({
    startingChs: Uint8Array.of(0x00, 0x02, 0x00),
    endingChs: Uint8Array.of(0xff, 0xff, 0xff),
    sizeInLba: n > 0xffffffffn ? 0xffffffff : Number(n),
  });
}

/** One 128-byte entry. */
export function encodeGptEntry(e: GptEntry): Uint8Array {
  if (Buffer.byteLength(e.name, 'utf16le') > GPT_ENTRY.field('name').size)
    throw bad('E_GPT_BAD_NAME', `Cannot name partition ${JSON.stringify(e.name)}: at most 36 UTF-16 units`);
  return GPT_ENTRY.encode(e);
}

/**
 * Decodes the header sector read at `lba` of a disk of `totalSectors`: signature, header
 * size, CRC32 (over HeaderSize bytes, its own field zeroed), MyLBA, and an entry array
 * shape and place that fit the disk — in that order, before any other field is used.
 */
export function decodeGptHeader(sector: Uint8Array, lba: bigint, totalSectors: bigint): GptHeader {
  if (sector.length < SECTOR)
    throw bad(
      'E_GPT_TRUNCATED',
      `Cannot decode GPT header at LBA ${lba}: ${sector.length} bytes, expected 512`,
    );
  const at = `Cannot decode GPT header at LBA ${lba}`;
  if (Buffer.from(GPT_HEADER.raw(sector, 'signature')).toString('latin1') !== GPT_SIGNATURE)
    throw bad('E_GPT_MAGIC', `${at}: no "EFI PART" signature`);
  const h = GPT_HEADER.decode(sector);
  if (h.headerSize < GPT_HEADER_SIZE || h.headerSize > SECTOR)
    throw bad('E_GPT_HEADER_SIZE', `${at}: header size ${h.headerSize}`);
  const copy = sector.slice(0, h.headerSize);
  GPT_HEADER.write(copy, 'headerCrc32', 0);
  const crc = u32crc(copy);
  if (crc !== h.headerCrc32)
    throw bad('E_GPT_HEADER_CRC', `${at}: CRC32 is ${hex32(h.headerCrc32)}, expected ${hex32(crc)}`);
  if (h.myLba !== lba) throw bad('E_GPT_HEADER_LBA', `${at}: it says it is at LBA ${h.myLba}`);
  const { numberOfEntries: count, sizeOfEntry: esize } = h;
  if (
    count === 0 ||
    count > MAX_ENTRIES ||
    esize < GPT_ENTRY_SIZE ||
    esize > MAX_ENTRY_SIZE ||
    esize % 8 !== 0
  )
    throw bad('E_GPT_ENTRY_SHAPE', `Cannot decode GPT entries: ${count} entries of ${esize} bytes`);
  const elba = h.partitionEntryLba;
  if (elba < 1n || elba + BigInt(Math.ceil((count * esize) / SECTOR)) > totalSectors)
    throw bad('E_GPT_ENTRY_RANGE', `Cannot decode GPT entries: LBA ${elba} is outside the disk`);
  return h;
}

/** Bytes of the entry array `h` describes. */
export function gptEntriesBytes(h: GptHeader): number {
  return h.numberOfEntries * h.sizeOfEntry;
}

/**
 * Checks the entry array's CRC32 against `h`, then decodes the used entries (type GUID not
 * zero), each with its 1-based index. Ranges and overlaps are the disk reader's checks.
 */
export function decodeGptEntries(h: GptHeader, entries: Uint8Array): (GptEntry & { index: number })[] {
  if (entries.length < gptEntriesBytes(h))
    throw bad(
      'E_GPT_TRUNCATED',
      `Cannot decode GPT entries: ${entries.length} bytes, expected ${gptEntriesBytes(h)}`,
    );
  const crc = u32crc(entries.subarray(0, gptEntriesBytes(h)));
  if (crc !== h.entriesCrc32)
    throw bad(
      'E_GPT_ENTRIES_CRC',
      `Cannot decode GPT entries: CRC32 is ${hex32(h.entriesCrc32)}, expected ${hex32(crc)}`,
    );
  const out: (GptEntry & { index: number })[] = [];
  for (let i = 0; i < h.numberOfEntries; i++) {
    const e = entries.subarray(i * h.sizeOfEntry, i * h.sizeOfEntry + GPT_ENTRY_SIZE);
    if (GPT_ENTRY.raw(e, 'typeGuid').every((b) => b === 0)) continue;
    out.push({ ...GPT_ENTRY.decode(e), index: i + 1 });
  }
  return out;
}

/** CRC32 of an encoded entry array, for the headers. */
export function gptEntriesCrc(entries: Uint8Array): number {
  return u32crc(entries);
}
