// Read-only erofs images with mkfs.erofs (erofs-utils 1.5), deterministic: fixed
// UUID, every timestamp = SOURCE_DATE_EPOCH (-T), optional root ownership.
import { run } from '../../common/index.ts';
import { withClampedTree } from './fs-clamp.ts';
import { parseUuid } from '../guid.ts';
import {
  checkEpoch,
  checkSize,
  checkSourceDir,
  finishImage,
  type FsImageOptions,
  type FsImageResult,
  withTemp,
} from './fs-image.ts';

export interface ErofsOptions extends FsImageOptions {
  /** lz4 / lz4hc compression; default none (dm-verity and page cache like plain data). */
  compress?: 'lz4' | 'lz4hc';
  /** SELinux file_contexts file to label files with (security.selinux xattrs). */
  fileContexts?: string;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Builds an erofs image of `srcDir` at `outPath`, minimised, padded to 4 KiB (or `size`). */
export async function makeErofs(
  srcDir: string,
  outPath: string,
  options: ErofsOptions,
): Promise<FsImageResult> {
  const epoch = checkEpoch(options.sourceDateEpoch);
  const size = checkSize(options.size);
  await checkSourceDir(srcDir);
  const uuid = options.uuid === undefined ? NIL_UUID : parseUuid(options.uuid, 'erofs UUID');
  return withTemp(outPath, async (tmp) => {
    // --ignore-mtime: every inode gets the -T time, not its own mtime (erofs-utils 1.5 keeps newer ones).
    const args = [`-T${epoch}`, '--ignore-mtime', `-U${uuid}`, '--quiet'];
    if (options.rootOwner === true) args.push('--all-root');
    if (options.compress !== undefined) args.push(`-z${options.compress}`);
    if (options.fileContexts !== undefined) args.push(`--file-contexts=${options.fileContexts}`);
    await withClampedTree(srcDir, outPath, epoch, async (dir) => {
      args.push(tmp, dir);
      await run('mkfs.erofs', args, { timeout: 600_000, env: { SOURCE_DATE_EPOCH: String(epoch) } });
    });
    return finishImage(tmp, outPath, size);
  });
}
