// Reading a MilkyWayLinux disk offline, shared by `inspect` and `verify`: byte ranges and whole
// partitions copied out of the disk file, file systems told apart by their magic, the UKI's
// command line read from the ESP (mtools, no mount), erofs and ext4 contents extracted with
// their own tools (fsck.erofs, debugfs), and the root hash the CoreOS partition UUIDs spell.
import { closeSync, createReadStream, createWriteStream, openSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run } from '../common/index.ts';
import { type GptPartition, SECTOR } from '../formats/index.ts';
import { ImageError } from './image-error.ts';

/** A partition's offset and size in bytes. */
export const part = {
  offset: (p: GptPartition): number => Number(p.firstLba) * SECTOR,
  size: (p: GptPartition): number => Number(p.sizeBytes),
};

/** Reads `length` bytes at `offset` of `path`. */
export function readRange(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Copies a partition (or its first `length` bytes) into its own file. */
export async function extractPartition(
  disk: string,
  p: GptPartition,
  out: string,
  length?: number,
): Promise<string> {
  const start = part.offset(p);
  const end = start + (length ?? part.size(p)) - 1;
  await pipeline(createReadStream(disk, { start, end, highWaterMark: 1 << 20 }), createWriteStream(out));
  return out;
}

/** File system by magic: erofs, ext4, vfat, a verity hash area, a verity-sig JSON, or empty. */
export function sniffFilesystem(disk: string, p: GptPartition): string | null {
  const head = readRange(disk, part.offset(p), 4096);
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < 4096) return null;
  if (dv.getUint32(1024, true) === 0xe0f5e1e2) return 'erofs';
  if (dv.getUint16(1024 + 56, true) === 0xef53) return 'ext4';
  if (new TextDecoder().decode(head.subarray(0, 8)) === 'verity\0\0') return 'verity';
  if (
    head[510] === 0x55 &&
    head[511] === 0xaa &&
    /FAT/.test(new TextDecoder('latin1').decode(head.subarray(54, 90)))
  )
    return 'vfat';
  if (head[0] === 0x7b) return 'verity-sig';
  if (new TextDecoder().decode(head.subarray(0, 8)) === 'MWSTAGE2') return 'stage2';
  return head.every((b) => b === 0) ? null : 'unknown';
}

/** Bytes an erofs image occupies (its superblock's block count), rounded up to 4 KiB. */
export function erofsSize(sb: Uint8Array): number {
  const dv = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  if (sb.length < 1024 + 40 || dv.getUint32(1024, true) !== 0xe0f5e1e2)
    throw new ImageError('E_DISK_FS', 'Not an erofs image (magic missing)');
  const blkszbits = dv.getUint8(1024 + 12);
  const blocks = dv.getUint32(1024 + 36, true);
  if (blkszbits < 9 || blkszbits > 16)
    throw new ImageError('E_DISK_FS', `erofs block size 2^${blkszbits} is not supported`);
  return Math.ceil((blocks * 2 ** blkszbits) / 4096) * 4096;
}

/** The `.cmdline` section of a PE image (a UKI), or null. PE/COFF §3.3 section table. */
export function peSection(bytes: Uint8Array, name: string): Uint8Array | null {
  if (bytes.length < 0x40) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pe = dv.getUint32(0x3c, true);
  if (pe + 24 > bytes.length || dv.getUint32(pe, true) !== 0x4550) return null;
  const count = dv.getUint16(pe + 6, true);
  const optSize = dv.getUint16(pe + 20, true);
  let s = pe + 24 + optSize;
  for (let i = 0; i < count && s + 40 <= bytes.length; i++, s += 40) {
    const n = new TextDecoder().decode(bytes.subarray(s, s + 8)).replace(/\0+$/, '');
    if (n !== name) continue;
    const vsize = dv.getUint32(s + 8, true);
    const rawSize = dv.getUint32(s + 16, true);
    const raw = dv.getUint32(s + 20, true);
    if (raw + Math.min(vsize, rawSize) > bytes.length) return null;
    return bytes.subarray(raw, raw + Math.min(vsize, rawSize));
  }
  return null;
}

/** The UKI's command line from the ESP (copied out with mtools), or null. */
export async function ukiCmdline(disk: string, esp: GptPartition, work: string): Promise<string | null> {
  const img = await extractPartition(disk, esp, join(work, 'esp.img'));
  const out = join(work, 'BOOTX64.EFI');
  const r = await run('mcopy', ['-n', '-i', img, '::EFI/BOOT/BOOTX64.EFI', out], {
    timeout: 60_000,
    reject: false,
    env: { MTOOLS_SKIP_CHECK: '1' },
  });
  if (r.exitCode !== 0) return null;
  const sec = peSection(new Uint8Array(await readFile(out)), '.cmdline');
  return sec === null ? null : new TextDecoder().decode(sec).replace(/\0+$/, '').trim();
}

export function cmdlineParam(cmdline: string | null, key: string): string | null {
  if (cmdline === null) return null;
  for (const w of cmdline.split(/\s+/)) if (w.startsWith(`${key}=`)) return w.slice(key.length + 1);
  return null;
}

/** Files of an erofs image (fsck.erofs --extract), into `dir`. */
export async function extractErofs(image: string, dir: string): Promise<void> {
  await run('fsck.erofs', [`--extract=${dir}`, '--no-preserve-owner', image], { timeout: 600_000 });
}

/** Files of an ext4 partition's root folder into `dir` (debugfs rdump, no mount). */
export async function extractExt4(image: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run('debugfs', ['-R', `rdump / ${dir}`, image], { timeout: 600_000 });
}

/** Runs `fn` with a temporary folder, removed afterwards whatever happens. */
export async function withWork<T>(fn: (work: string) => Promise<T>): Promise<T> {
  const work = await mkdtemp(join(tmpdir(), 'mway-image-'));
  try {
    return await fn(work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** CoreOS root hash as the DPS partition UUIDs spell it (data UUID ‖ hash UUID). */
export function rootHashFromUuids(data: GptPartition, hash: GptPartition): string {
  return (data.uuid + hash.uuid).replaceAll('-', '').toLowerCase();
}
