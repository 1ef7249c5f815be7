// Shared by the boot tests: the cached Debian kernel and a GPT disk whose ESP holds a UKI.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DPS, type GptPartitionSpec, makeVfat, writeGpt } from '../../formats/index.ts';
import { DEFAULT_KERNEL_CACHE, fetchKernel, type KernelPackage } from '../../imagebuild/kernel-package.ts';
import { buildUki } from '../../imagebuild/uki.ts';

export const EPOCH = 1_700_000_000;

let kernel: Promise<KernelPackage> | undefined;

/** Debian's kernel, downloaded once into .cache/kernel (CI has the Debian mirror). */
export function testKernel(): Promise<KernelPackage> {
  kernel ??= fetchKernel({ cacheDir: DEFAULT_KERNEL_CACHE });
  return kernel;
}

/** A disk: an ESP with EFI/BOOT/BOOTX64.EFI = UKI(kernel, initrd, cmdline), then `more` partitions. */
export async function ukiDisk(
  dir: string,
  options: { initrd: Uint8Array; cmdline: string; more?: GptPartitionSpec[]; sizeBytes?: number },
): Promise<string> {
  const k = await testKernel();
  const esp = join(dir, 'esp');
  await mkdir(join(esp, 'EFI/BOOT'), { recursive: true });
  await buildUki({
    vmlinuz: k.vmlinuz,
    initrd: options.initrd,
    cmdline: options.cmdline,
    out: join(esp, 'EFI/BOOT/BOOTX64.EFI'),
  });
  await makeVfat(esp, join(dir, 'esp.img'), { sourceDateEpoch: EPOCH });
  const disk = join(dir, 'disk.img');
  await writeGpt(disk, {
    sizeBytes: options.sizeBytes ?? 64 << 20,
    partitions: [
      { name: 'esp', type: DPS.esp, sizeBytes: 40 << 20, image: join(dir, 'esp.img') },
      ...(options.more ?? []),
    ],
  });
  return disk;
}
