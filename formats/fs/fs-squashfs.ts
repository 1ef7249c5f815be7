// Read-only squashfs images with mksquashfs (squashfs-tools 4.5), deterministic:
// SOURCE_DATE_EPOCH for every time, -noappend, single sorted pass.
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

export interface SquashfsOptions extends Omit<FsImageOptions, 'uuid'> {
  /** Compressor; default zstd. */
  compress?: 'gzip' | 'xz' | 'zstd' | 'lz4';
}

/** Builds a squashfs image of `srcDir` at `outPath` (squashfs has no UUID), padded to 4 KiB. */
export async function makeSquashfs(
  srcDir: string,
  outPath: string,
  options: SquashfsOptions,
): Promise<FsImageResult> {
  const epoch = checkEpoch(options.sourceDateEpoch);
  const size = checkSize(options.size);
  await checkSourceDir(srcDir);
  return withTemp(outPath, async (tmp) => {
    // SOURCE_DATE_EPOCH sets mkfs and every inode time; mksquashfs refuses it next to -all-time.
    const args = [tmp, '-noappend', '-no-progress', '-quiet'];
    args.push('-comp', options.compress ?? 'zstd', '-processors', '1');
    if (options.rootOwner === true) args.push('-all-root');
    // Times clamped in a copy too: mksquashfs 4.5 keeps older per-file mtimes.
    await withClampedTree(srcDir, outPath, epoch, async (dir) => {
      await run('mksquashfs', [dir, ...args], {
        timeout: 600_000,
        env: { SOURCE_DATE_EPOCH: String(epoch) },
      });
    });
    return finishImage(tmp, outPath, size);
  });
}
