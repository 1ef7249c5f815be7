// A Unified Kernel Image: systemd-stub (Debian systemd-boot-efi) with the kernel,
// initramfs, command line and os-release added as PE sections, so UEFI firmware boots
// it as EFI/BOOT/BOOTX64.EFI with no boot loader. Same layout rules as systemd's ukify:
// new sections start after the stub's last section, each at a page-aligned virtual
// address (a multiple of the stub's SectionAlignment), .linux last.
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from '../common/index.ts';
import { FormatError } from '../formats/index.ts';
import { ImageError } from './image-error.ts';

export const DEFAULT_EFI_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

export interface PeLayout {
  imageBase: bigint;
  sectionAlignment: number;
  /** First free relative virtual address after every section. */
  end: number;
  sections: { name: string; virtualAddress: number; virtualSize: number }[];
}

/** Reads the PE32+ optional header and section table (PE/COFF spec §3, §4). */
export function readPeLayout(bytes: Uint8Array, path = 'PE image'): PeLayout {
  const bad = (why: string): ImageError =>
    new ImageError('E_UKI_BAD_STUB', `Cannot read ${path}: ${why}`, { path });
  if (bytes.length < 0x40 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) throw bad('no MZ header');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pe = v.getUint32(0x3c, true);
  if (pe + 24 > bytes.length || v.getUint32(pe, true) !== 0x00004550) throw bad('no PE signature');
  const coff = pe + 4;
  const nsections = v.getUint16(coff + 2, true);
  const optSize = v.getUint16(coff + 16, true);
  const opt = coff + 20;
  if (opt + optSize > bytes.length || optSize < 112) throw bad('optional header truncated');
  if (v.getUint16(opt, true) !== 0x20b) throw bad('not PE32+');
  const imageBase = v.getBigUint64(opt + 24, true);
  const sectionAlignment = v.getUint32(opt + 32, true);
  const table = opt + optSize;
  if (table + nsections * 40 > bytes.length) throw bad('section table truncated');
  const sections: PeLayout['sections'] = [];
  let end = 0;
  for (let i = 0; i < nsections; i++) {
    const o = table + i * 40;
    const name = Buffer.from(bytes.subarray(o, o + 8))
      .toString('latin1')
      .replace(/\0+$/, '');
    const virtualSize = v.getUint32(o + 8, true);
    const virtualAddress = v.getUint32(o + 12, true);
    const rawSize = v.getUint32(o + 16, true);
    sections.push({ name, virtualAddress, virtualSize });
    end = Math.max(end, virtualAddress + Math.max(virtualSize, rawSize));
  }
  if (sectionAlignment === 0 || (sectionAlignment & (sectionAlignment - 1)) !== 0)
    throw bad(`section alignment ${sectionAlignment}`);
  return { imageBase, sectionAlignment, end, sections };
}

export interface BuildUkiOptions {
  vmlinuz: string;
  /** initramfs bytes or a path to them */
  initrd: string | Uint8Array;
  cmdline: string;
  out: string;
  /** os-release text for .osrel (default: a MilkyWayLinux one) */
  osRelease?: string;
  stub?: string;
}

const DEFAULT_OS_RELEASE = 'NAME="MilkyWayLinux"\nID=milkyway\nPRETTY_NAME="MilkyWayLinux"\n';

/** The kernel command line for CoreOS: serial console, panic reboot, the verity root hash. */
export function coreosCmdline(options: { rootHash: string; extra?: readonly string[] }): string {
  if (!/^[0-9a-f]{64}$/.test(options.rootHash)) {
    throw new FormatError(
      'E_VERITY_BAD_ROOT',
      `Cannot build the command line: root hash ${JSON.stringify(options.rootHash)} is not 64 lower-case hex digits`,
    );
  }
  return [
    'console=ttyS0,115200',
    'panic=10',
    `mway.roothash=${options.rootHash}`,
    ...(options.extra ?? []),
  ].join(' ');
}

/** Sets the COFF TimeDateStamp and recomputes the PE checksum (the ImageHlp algorithm), in place. */
export function setPeTimestampAndChecksum(bytes: Uint8Array, timestamp: number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pe = v.getUint32(0x3c, true);
  v.setUint32(pe + 8, timestamp >>> 0, true);
  const checksumAt = pe + 24 + 64;
  v.setUint32(checksumAt, 0, true);
  let sum = 0;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) {
    sum += v.getUint16(i, true);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (bytes.length % 2 === 1) {
    sum += bytes[bytes.length - 1] ?? 0;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint32(checksumAt, (sum + bytes.length) >>> 0, true);
}

/** Writes the UKI to `out` (atomically). The same inputs give the same bytes. */
export async function buildUki(
  options: BuildUkiOptions,
): Promise<{ size: number; sections: { name: string; vma: string; size: number }[] }> {
  const stubPath = options.stub ?? DEFAULT_EFI_STUB;
  let stubBytes: Uint8Array;
  try {
    stubBytes = await readFile(stubPath);
  } catch (e) {
    throw new ImageError(
      'E_UKI_BAD_STUB',
      `Cannot read the EFI stub ${stubPath}: install the Debian package systemd-boot-efi`,
      {
        cause: e,
        path: stubPath,
      },
    );
  }
  const layout = readPeLayout(stubBytes, stubPath);
  const align = Math.max(4096, layout.sectionAlignment);
  const up = (n: number): number => Math.ceil(n / align) * align;
  const work = await mkdtemp(join(tmpdir(), 'mway-uki-'));
  try {
    const osrel = join(work, 'osrel');
    const cmdline = join(work, 'cmdline');
    await writeFile(osrel, options.osRelease ?? DEFAULT_OS_RELEASE);
    // systemd-stub takes .cmdline as-is; a trailing NUL/newline is not part of the command line.
    await writeFile(cmdline, options.cmdline);
    let initrd: string;
    if (typeof options.initrd === 'string') initrd = options.initrd;
    else {
      initrd = join(work, 'initrd');
      await writeFile(initrd, options.initrd);
    }
    const parts: [string, string][] = [
      ['.osrel', osrel],
      ['.cmdline', cmdline],
      ['.initrd', initrd],
      ['.linux', options.vmlinuz],
    ];
    const args: string[] = [];
    const sections: { name: string; vma: string; size: number }[] = [];
    let rva = up(layout.end);
    for (const [name, file] of parts) {
      const size = (await stat(file)).size;
      const vma = layout.imageBase + BigInt(rva);
      args.push(
        '--add-section',
        `${name}=${file}`,
        '--set-section-flags',
        `${name}=data,readonly`,
        '--change-section-vma',
        `${name}=0x${vma.toString(16)}`,
      );
      sections.push({ name, vma: `0x${vma.toString(16)}`, size });
      rva = up(rva + size);
    }
    const tmpOut = join(dirname(options.out), `.${process.pid}-${Date.now()}.uki.tmp`);
    try {
      await run('objcopy', [...args, stubPath, tmpOut], { timeout: 120_000 });
      // objcopy stamps the current time into the COFF header (it ignores SOURCE_DATE_EPOCH for
      // PE), and the optional-header checksum covers it: zero the stamp, recompute the sum.
      const bytes = await readFile(tmpOut);
      setPeTimestampAndChecksum(bytes, 0);
      await writeFile(tmpOut, bytes);
      await rename(tmpOut, options.out);
    } catch (e) {
      await rm(tmpOut, { force: true });
      throw e;
    }
    return { size: (await stat(options.out)).size, sections };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
