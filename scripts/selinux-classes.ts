// `npm run selinux:classes` (scripts/selinux-classes.ts): writes layers/selinux/kernel-classes.cil,
// the base policy's classes, permissions and initial SIDs, from the kernel the default image
// spec ships (imagebuild/kernel-selinux.ts reads them out of its bzImage). `--check` only
// compares; test/layers/selinux-kernel.test.ts fails the same way when the file differs.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_KERNEL_CACHE,
  DEFAULT_SPEC,
  fetchKernel,
  kernelClassesCil,
  loadImageSpec,
  readKernelSelinux,
} from '../imagebuild/index.ts';

export const CLASSES_CIL = join(import.meta.dirname, '..', 'layers', 'selinux', 'kernel-classes.cil');

/** The file's text for the default spec's kernel. */
export async function expectedClassesCil(): Promise<string> {
  const spec = await loadImageSpec(DEFAULT_SPEC);
  const k = await fetchKernel({
    ...('deb' in spec.kernel ? { deb: spec.kernel.deb } : { package: spec.kernel.package }),
    cacheDir: DEFAULT_KERNEL_CACHE,
  });
  const sha256 = createHash('sha256')
    .update(await readFile(k.vmlinuz))
    .digest('hex');
  return kernelClassesCil(await readKernelSelinux(k.vmlinuz), { release: k.version, sha256 });
}

if (import.meta.main) {
  const want = await expectedClassesCil();
  const have = await readFile(CLASSES_CIL, 'utf8').catch(() => '');
  if (process.argv.includes('--check')) {
    if (have !== want) {
      console.error(`${CLASSES_CIL} differs from the kernel's classes: run npm run selinux:classes`);
      process.exitCode = 1;
    }
  } else if (have !== want) {
    await writeFile(CLASSES_CIL, want);
    console.log(`wrote ${CLASSES_CIL}`);
  } else console.log(`${CLASSES_CIL} is current`);
}
