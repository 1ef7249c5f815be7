// The boot artefacts' frame: Debian's kernel package, and the ESP that holds the signed stage-1
// UKI where firmware looks (EFI/BOOT/BOOTX64.EFI). Stage 1 and stage 2 themselves are built by
// build-chain.ts; doc/boot.md has the path these make.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeVfat } from '../formats/index.ts';
import type { BuildContext } from './build-context.ts';
import { DEFAULT_KERNEL_CACHE, fetchKernel, type KernelPackage } from './kernel-package.ts';

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
 * mode (doc/selinux.md). Signed into stage 2's command line (build-chain.ts), so the mode is the
 * vendor's, not the disk's.
 */
export function selinuxCmdline(mode: 'enforcing' | 'permissive' | 'off'): string[] {
  if (mode === 'off') return [];
  return ['security=selinux', `enforcing=${mode === 'enforcing' ? 1 : 0}`];
}

/** Step `vfat esp`: the ESP image, `sizeBytes` big, holding the signed stage 1 where firmware looks. */
export async function buildEsp(ctx: BuildContext, o: { stage1: string; sizeBytes: number }): Promise<string> {
  ctx.progress.step('vfat esp');
  const dir = join(ctx.work, 'esp');
  await mkdir(join(dir, 'EFI', 'BOOT'), { recursive: true });
  await copyFile(o.stage1, join(dir, 'EFI', 'BOOT', 'BOOTX64.EFI'));
  const image = join(ctx.work, 'esp.img');
  await makeVfat(dir, image, {
    sourceDateEpoch: ctx.epoch,
    size: o.sizeBytes,
    label: 'ESP',
    volumeId: ctx.uuid('esp').replaceAll('-', '').slice(0, 8),
  });
  await ctx.written(image);
  return image;
}
