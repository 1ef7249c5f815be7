// The initramfs: busybox (static), the kernel modules CoreOS needs with their
// dependencies, veritysetup with its libraries, and the generated /init — one
// deterministic zstd-compressed cpio (Debian's 6.1 kernel has CONFIG_RD_ZSTD=y).
import { readFile } from 'node:fs/promises';
import { zstdDecompressSync } from 'node:zlib';
import { requireTool, run } from '../common/index.ts';
import { binaryClosure } from './binary-closure.ts';
import { type CpioEntry, writeCpio } from '../formats/index.ts';
import { ImageError } from './image-error.ts';
import { initramfsInit } from './initramfs-init.ts';
import type { KernelPackage } from './kernel-package.ts';
import { moduleClosure } from './module-closure.ts';

/**
 * Modules /init loads, in this order (each after its dependencies). crc32c_generic comes
 * first because libcrc32c (erofs, ext4) asks the crypto API for crc32c at load time and
 * modules.dep only lists it as a soft dependency. button + evdev give the agent the ACPI
 * power button (QEMU's system_powerdown); virtio_net and loop are for CoreOS itself;
 * i6300esb is the watchdog the agent feeds (QEMU's; a PCI driver loads without its device).
 */
export const INITRAMFS_MODULES: readonly string[] = [
  'crc32c_generic',
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'virtio_net',
  'virtio_rng',
  'loop',
  'dm_mod',
  'dm_verity',
  'erofs',
  'squashfs',
  'overlay',
  'ext4',
  'vfat',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'button',
  'evdev',
  'i6300esb',
];

export interface BuildInitramfsOptions {
  kernel: KernelPackage;
  sourceDateEpoch: number;
  /** Modules beyond INITRAMFS_MODULES. */
  extraModules?: readonly string[];
  /** Replace the generated /init (tests, the bare baseline). */
  init?: string;
  /** Only busybox and /init: no modules, no veritysetup (the bench baseline). */
  bare?: boolean;
  /** Where busybox comes from (default: the one on PATH, from busybox-static). */
  busybox?: string;
}

const MODULES_LIST = '/etc/modules.load';
const SHA_NI_LIST = '/etc/modules.sha_ni';

/**
 * Loaded only on CPUs with SHA extensions (`sha_ni` in /proc/cpuinfo), before dm-verity
 * picks its sha256: there it hashes at GB/s. Under QEMU TCG, which has no SHA-NI, its
 * AVX2 code is emulated and measured twice as slow as sha256-generic, so it stays out.
 */
export const SHA_NI_MODULES: readonly string[] = ['sha256_ssse3'];

function addParents(entries: Map<string, CpioEntry>, path: string): void {
  const parts = path.split('/').filter((s) => s !== '');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    if (!entries.has(dir)) entries.set(dir, { path: dir, type: 'dir', mode: 0o755 });
  }
}

async function moduleBytes(path: string): Promise<Uint8Array> {
  const raw = await readFile(path);
  // busybox insmod passes the file to init_module(2) as is: decompress here.
  if (path.endsWith('.zst')) return zstdDecompressSync(raw);
  if (path.endsWith('.xz'))
    return (
      (await run('xz', ['-dc', path], { timeout: 60_000, binary: true })).stdoutBytes ?? new Uint8Array()
    );
  return raw;
}

/** Builds the initramfs for `kernel` and returns the compressed cpio bytes. */
export async function buildInitramfs(options: BuildInitramfsOptions): Promise<Uint8Array> {
  const entries = new Map<string, CpioEntry>();
  const put = (e: CpioEntry): void => {
    addParents(entries, e.path);
    entries.set(e.path.replace(/^\/+/, ''), { ...e, path: e.path.replace(/^\/+/, '') });
  };
  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'newroot', 'etc', 'root'])
    put({ path: d, type: 'dir', mode: 0o755 });
  // The kernel opens /dev/console for init before anything is mounted.
  put({ path: 'dev/console', type: 'char', major: 5, minor: 1, mode: 0o600 });

  const busybox = options.busybox ?? (await requireTool('busybox'));
  const bb = await readFile(busybox);
  put({ path: 'bin/busybox', type: 'file', data: bb, mode: 0o755 });
  const applets = (await run(busybox, ['--list-full'], { timeout: 10_000 })).stdout
    .split('\n')
    .filter((s) => s !== '');
  for (const a of applets) {
    if (a === 'bin/busybox') continue;
    put({ path: a, type: 'symlink', target: '/bin/busybox' });
  }

  if (options.bare !== true) {
    const prefix = `${options.kernel.modulesDir}/`;
    const pack = async (names: readonly string[], list: string, skip: Set<string>): Promise<void> => {
      const inImage: string[] = [];
      for (const m of await moduleClosure(options.kernel.modulesDir, options.kernel.version, names)) {
        if (!m.startsWith(prefix))
          throw new ImageError('E_MODULE_NOT_FOUND', `Cannot place module ${m}: outside ${prefix}`);
        const dest = `lib/modules/${options.kernel.version}/${m.slice(prefix.length).replace(/\.(xz|zst)$/, '')}`;
        if (skip.has(dest)) continue;
        skip.add(dest);
        put({ path: dest, type: 'file', data: await moduleBytes(m), mode: 0o644 });
        inImage.push(`/${dest}`);
      }
      put({ path: list, type: 'file', data: Buffer.from(`${inImage.join('\n')}\n`), mode: 0o644 });
    };
    const packed = new Set<string>();
    await pack([...INITRAMFS_MODULES, ...(options.extraModules ?? [])], MODULES_LIST, packed);
    await pack(SHA_NI_MODULES, SHA_NI_LIST, packed);

    const veritysetup = await requireTool('veritysetup');
    const files = await binaryClosure([veritysetup]);
    // The loader is reached under two names (/lib64 and the multiarch dir): keep one copy.
    const bySrc = new Map<string, string>();
    for (const f of files) {
      const first = bySrc.get(f.src);
      if (first !== undefined) {
        put({ path: f.dest, type: 'symlink', target: first });
        continue;
      }
      bySrc.set(f.src, f.dest);
      put({ path: f.dest, type: 'file', data: await readFile(f.src), mode: 0o755 });
    }
  }

  put({
    path: 'init',
    type: 'file',
    data: Buffer.from(options.init ?? initramfsInit({ modulesList: MODULES_LIST, shaNiList: SHA_NI_LIST })),
    mode: 0o755,
  });
  return writeCpio([...entries.values()], { sourceDateEpoch: options.sourceDateEpoch, compress: 'zstd' });
}
