// FAT images (the ESP) with mkfs.vfat (dosfstools 4.2, --invariant) filled by mcopy
// (mtools) without mounting; source times clamped to SOURCE_DATE_EPOCH, fixed volume id.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/index.ts';
import { withClampedTree } from './fs-clamp.ts';
import {
  checkEpoch,
  checkSize,
  checkSourceDir,
  type FsImageOptions,
  type FsImageResult,
  finishImage,
  withTemp,
} from './fs-image.ts';
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';

export interface VfatOptions extends FsImageOptions {
  /** 8 hex digits; default derived from nothing: 4d57594c ("MWYL"). */
  volumeId?: string;
  /** Volume label, at most 11 characters. */
  label?: string;
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const st = await lstat(join(dir, name));
    total += BLOCK_SIZE + Math.ceil(st.size / BLOCK_SIZE) * BLOCK_SIZE;
    if (st.isDirectory()) total += await treeBytes(join(dir, name));
  }
  return total;
}

/** Builds a FAT image of `srcDir`; without `size`, 1.2 × content + 2 MiB. */
export async function makeVfat(
  srcDir: string,
  outPath: string,
  options: VfatOptions,
): Promise<FsImageResult> {
  const epoch = checkEpoch(options.sourceDateEpoch);
  const requested = checkSize(options.size);
  await checkSourceDir(srcDir);
  const volumeId = options.volumeId ?? '4d57594c';
  if (!/^[0-9a-fA-F]{8}$/.test(volumeId)) {
    throw new FormatError(
      'E_FS_BAD_VOLUME_ID',
      `Cannot use FAT volume id ${JSON.stringify(volumeId)}: expected 8 hex digits`,
    );
  }
  const size =
    requested ?? Math.ceil(((await treeBytes(srcDir)) * 1.2 + (2 << 20)) / BLOCK_SIZE) * BLOCK_SIZE;
  const env = { SOURCE_DATE_EPOCH: String(epoch), MTOOLS_SKIP_CHECK: '1', TZ: 'UTC' };
  return withTemp(outPath, async (tmp) => {
    const args = ['--invariant', '-i', volumeId, '-C'];
    if (options.label !== undefined) args.push('-n', options.label);
    args.push(tmp, String(size / 1024));
    await run('mkfs.vfat', args, { timeout: 120_000, env });
    await withClampedTree(srcDir, outPath, epoch, async (dir) => {
      const names = (await readdir(dir)).sort();
      if (names.length === 0) return;
      await run('mcopy', ['-s', '-m', '-Q', '-i', tmp, ...names.map((n) => join(dir, n)), '::'], {
        timeout: 600_000,
        env,
      });
    });
    return finishImage(tmp, outPath, size);
  });
}
