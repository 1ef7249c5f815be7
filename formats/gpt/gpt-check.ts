// Both GPT copies and the protective MBR, checked independently (UEFI 2.10 §5.2.3, §5.3.2).
// readGpt reads whichever header is good, which is what a firmware does; a verifier must also
// say when one copy is damaged, missing (a disk cut short) or disagrees with the other, and
// when the protective MBR is not one, since a firmware or an MBR tool would act on those bytes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError } from '../format-error.ts';
import { decodeGptAt } from './gpt-disk.ts';
import { encodeProtectiveMbr, SECTOR } from './gpt-header.ts';

export interface GptRedundancy {
  /** Why the primary header or its entries are bad (its decode code), or undefined. */
  primary: FormatError | undefined;
  /** Why the backup is bad, missing or disagrees with the primary (E_GPT_BACKUP), or undefined. */
  backup: FormatError | undefined;
  /** Why sector 0 is not the protective MBR of this disk (E_GPT_PMBR), or undefined. */
  protectiveMbr: FormatError | undefined;
}

function asFormatError(e: unknown): FormatError {
  return e instanceof FormatError ? e : new FormatError('E_GPT_TRUNCATED', String(e), { cause: e });
}

/**
 * Sector 0 of a disk of `total` sectors must hold exactly the protective MBR (UEFI 2.10 §5.2.3):
 * one 0xEE record from LBA 1 of size disk − 1 (capped at 2^32−1), three zero records, 0xAA55.
 * Bytes 0–445 (boot code, disk signature) are the firmware's business and not compared.
 */
export function checkProtectiveMbr(mbr: Uint8Array, total: bigint): FormatError | undefined {
  const want = encodeProtectiveMbr(total);
  for (let i = 446; i < SECTOR; i++) {
    if (mbr[i] !== want[i]) {
      const what =
        i >= 510
          ? 'no 0xAA55 signature'
          : i >= 462
            ? `partition record ${Math.floor((i - 446) / 16) + 1} is not empty`
            : i === 450
              ? `the first record has type 0x${(mbr[i] ?? 0).toString(16)}, not 0xEE`
              : i >= 454 && i < 458
                ? 'the 0xEE record does not start at LBA 1'
                : i >= 458
                  ? `the 0xEE record does not cover the disk (${total - 1n} sectors after LBA 0)`
                  : 'the first record is not the protective one (boot flag or CHS)';
      return new FormatError('E_GPT_PMBR', `Protective MBR: ${what} (byte ${i})`);
    }
  }
  return undefined;
}

/** Reads both GPT copies and the protective MBR of `diskPath`; never throws for what it finds. */
export function checkGptRedundancy(diskPath: string): GptRedundancy {
  const fd = openSync(diskPath, 'r');
  try {
    const total = BigInt(fstatSync(fd).size) / BigInt(SECTOR);
    const out: GptRedundancy = { primary: undefined, backup: undefined, protectiveMbr: undefined };
    const mbr = new Uint8Array(SECTOR);
    out.protectiveMbr =
      readSync(fd, mbr, 0, SECTOR, 0) < SECTOR
        ? new FormatError('E_GPT_PMBR', 'Protective MBR: the disk is shorter than one sector')
        : checkProtectiveMbr(mbr, total);
    let primary: ReturnType<typeof decodeGptAt> | undefined;
    try {
      primary = decodeGptAt(fd, 1n, total);
      out.primary = reservedTail(fd, 1n, primary.h.headerSize, 'primary');
    } catch (e) {
      out.primary = asFormatError(e);
    }
    const backupFail = (m: string) => new FormatError('E_GPT_BACKUP', `Backup GPT: ${m}`);
    // The backup header is in the last sector: where the primary says, and at the disk's end.
    if (primary !== undefined && primary.h.alternateLba !== total - 1n) {
      out.backup = backupFail(
        `the primary header puts it at LBA ${primary.h.alternateLba}, the disk's last LBA is ${total - 1n} (disk cut short or grown?)`,
      );
      return out;
    }
    let backup: ReturnType<typeof decodeGptAt>;
    try {
      backup = decodeGptAt(fd, total - 1n, total);
    } catch (e) {
      const f = asFormatError(e);
      out.backup = backupFail(`${f.message} (${f.code})`);
      return out;
    }
    const tail = reservedTail(fd, total - 1n, backup.h.headerSize, 'backup');
    if (tail !== undefined) {
      out.backup = backupFail(tail.message);
      return out;
    }
    if (backup.h.alternateLba !== 1n) {
      out.backup = backupFail(`its alternate LBA is ${backup.h.alternateLba}, not 1`);
      return out;
    }
    if (primary === undefined) return out;
    // Everything but MyLBA, AlternateLBA, PartitionEntryLBA and the header CRC must agree.
    const p = primary.h;
    const b = backup.h;
    const differs: [boolean, string][] = [
      [p.revision !== b.revision || p.headerSize !== b.headerSize, 'revision or header size'],
      [p.firstUsableLba !== b.firstUsableLba || p.lastUsableLba !== b.lastUsableLba, 'usable LBA range'],
      [p.diskGuid !== b.diskGuid, 'disk GUID'],
      [
        p.numberOfEntries !== b.numberOfEntries ||
          p.sizeOfEntry !== b.sizeOfEntry ||
          p.entriesCrc32 !== b.entriesCrc32,
        'entry count, entry size or entry CRC32',
      ],
      [
        JSON.stringify(primary.entries, bigints) !== JSON.stringify(backup.entries, bigints),
        'partition entries',
      ],
    ];
    const first = differs.find(([d]) => d);
    if (first !== undefined) out.backup = backupFail(`its ${first[1]} differ from the primary's`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * The header sector after HeaderSize is reserved and must be zero (UEFI 2.10 §5.3.2); the CRC
 * does not cover it, so without this check those bytes could hold anything.
 */
function reservedTail(fd: number, lba: bigint, headerSize: number, which: string): FormatError | undefined {
  const sector = new Uint8Array(SECTOR);
  readSync(fd, sector, 0, SECTOR, Number(lba) * SECTOR);
  const at = sector.subarray(headerSize).findIndex((b) => b !== 0);
  if (at < 0) return undefined;
  return new FormatError(
    'E_GPT_RESERVED',
    `${which} GPT header at LBA ${lba}: reserved byte ${headerSize + at} of the sector is not zero`,
  );
}

function bigints(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
