// The boot artefact: Debian's kernel package, the initramfs (its modules and /init), the UKI
// that wraps kernel + initramfs + the command line pinning CoreOS's and the certificates' root
// hashes, and the ESP that holds the UKI where firmware looks (EFI/BOOT/BOOTX64.EFI).
// doc/boot.md has the path these make.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeVfat } from '../formats/index.ts';
import type { BuildContext } from './build-context.ts';
import { buildInitramfs } from './initramfs.ts';
import { DEFAULT_KERNEL_CACHE, fetchKernel, type KernelPackage } from './kernel-package.ts';
import { buildUki, coreosCmdline } from './uki.ts';

/** Step `kernel`: the spec's kernel package, downloaded and unpacked once into `cacheDir`. */
export async function fetchBootKernel(ctx: BuildContext, cacheDir?: string): Promise<KernelPackage> {
  const { kernel } = ctx.spec;
  ctx.progress.step('kernel');
  const k = await fetchKernel({
    ...('deb' in kernel ? { deb: kernel.deb } : { package: kernel.package }),
    cacheDir: cacheDir ?? DEFAULT_KERNEL_CACHE,
  });
  await ctx.written(k.vmlinuz);
  return k;
}

/**
 * The command line words for an SELinux mode. Debian's 6.1 kernel has SELinux built in but
 * AppArmor first and no `selinux=` parameter: `security=selinux` chooses it, `enforcing=` its
 * mode (doc/selinux.md). Signed inside the UKI, so the mode is the vendor's, not the disk's.
 */
export function selinuxCmdline(mode: 'enforcing' | 'permissive' | 'off'): string[] {
  if (mode === 'off') return [];
  return ['security=selinux', `enforcing=${mode === 'enforcing' ? 1 : 0}`];
}

export interface EspImage {
  image: string;
  cmdline: string;
}

/**
 * Steps `initramfs + UKI` and `vfat esp`: the ESP image, `sizeBytes` big, whose UKI boots
 * CoreOS `coreosRootHash` with the certificate partition `certsRootHash`.
 */
export async function buildEsp(
  ctx: BuildContext,
  o: { kernel: KernelPackage; coreosRootHash: string; certsRootHash: string; sizeBytes: number },
): Promise<EspImage> {
  const { spec, progress } = ctx;
  progress.step('initramfs + UKI');
  const initrd = await buildInitramfs({ kernel: o.kernel, sourceDateEpoch: ctx.epoch });
  const cmdline = coreosCmdline({
    rootHash: o.coreosRootHash,
    extra: [`mway.certs=${o.certsRootHash}`, ...selinuxCmdline(spec.selinux), ...spec.coreos.cmdline],
  });
  const dir = join(ctx.work, 'esp');
  await mkdir(join(dir, 'EFI', 'BOOT'), { recursive: true });
  const uki = await buildUki({
    vmlinuz: o.kernel.vmlinuz,
    initrd,
    cmdline,
    out: join(dir, 'EFI', 'BOOT', 'BOOTX64.EFI'),
    osRelease: `NAME="MilkyWayLinux"\nID=milkyway\nIMAGE_ID=${spec.name}\nIMAGE_VERSION=${spec.version}\nPRETTY_NAME="MilkyWayLinux ${spec.name} ${spec.version}"\n`,
  });
  progress.bytes(uki.size, uki.size);

  progress.step('vfat esp');
  const image = join(ctx.work, 'esp.img');
  await makeVfat(dir, image, {
    sourceDateEpoch: ctx.epoch,
    size: o.sizeBytes,
    label: 'ESP',
    volumeId: ctx.uuid('esp').replaceAll('-', '').slice(0, 8),
  });
  await ctx.written(image);
  return { image, cmdline };
}
