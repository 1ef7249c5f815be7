// Writable ext4 images filled from a directory with `mkfs.ext4 -d` (e2fsprogs 1.47),
// deterministic: fixed UUID and hash seed, E2FSPROGS_FAKE_TIME for every on-disk time,
// source timestamps clamped to SOURCE_DATE_EPOCH.
import { lstat, readdir, rm, writeFile } from 'node:fs/promises';
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';
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
import { parseUuid } from '../guid.ts';

export interface Ext4Options extends FsImageOptions {
  /** Volume label (at most 16 bytes). */
  label?: string;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Bytes of a tree, rounded up per file to 4 KiB, plus one block per entry. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop() as string;
    for (const name of await readdir(d)) {
      const p = join(d, name);
      const st = await lstat(p);
      total += BLOCK_SIZE + Math.ceil(st.size / BLOCK_SIZE) * BLOCK_SIZE;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return total;
}

/** Every path of the tree as debugfs names it (\"/\" first), refusing names debugfs cannot quote. */
async function treePaths(dir: string): Promise<string[]> {
  const out = ['/'];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      if (/["\n\r\\]/.test(name)) {
        throw new FormatError(
          'E_FS_NAME',
          `Cannot put ${JSON.stringify(name)} into ext4: quote, backslash or newline in a name`,
          { path: join(d, name) },
        );
      }
      const p = `${rel}/${name}`;
      out.push(p);
      if ((await lstat(join(d, name))).isDirectory()) await walk(join(d, name), p);
    }
  };
  await walk(dir, '');
  return out;
}

/** Builds an ext4 image of `srcDir`; without `size`, 1.3 × content + 16 MiB for metadata and journal-less slack. */
export async function makeExt4(
  srcDir: string,
  outPath: string,
  options: Ext4Options,
): Promise<FsImageResult> {
  const epoch = checkEpoch(options.sourceDateEpoch);
  const requested = checkSize(options.size);
  await checkSourceDir(srcDir);
  const uuid = options.uuid === undefined ? NIL_UUID : parseUuid(options.uuid, 'ext4 UUID');
  const size =
    requested ?? Math.ceil(((await treeBytes(srcDir)) * 1.3 + (16 << 20)) / BLOCK_SIZE) * BLOCK_SIZE;
  return withTemp(outPath, async (tmp) => {
    await withClampedTree(srcDir, outPath, epoch, async (dir) => {
      const ext = [`hash_seed=${uuid}`, 'lazy_itable_init=0', 'nodiscard'];
      if (options.rootOwner === true) ext.push('root_owner=0:0');
      const args = ['-q', '-F', '-b', String(BLOCK_SIZE), '-U', uuid, '-E', ext.join(','), '-d', dir];
      if (options.label !== undefined) args.push('-L', options.label);
      args.push(tmp, `${size / 1024}k`);
      const env = { E2FSPROGS_FAKE_TIME: String(epoch), SOURCE_DATE_EPOCH: String(epoch) };
      await run('mkfs.ext4', args, { timeout: 600_000, env });
      // mkfs.ext4 -d copies each source inode's ctime, which no syscall can set: fix it after.
      const cmds = (await treePaths(dir)).map((p) => `sif "${p}" ctime @${epoch}`);
      await writeFile(`${tmp}.cmds`, `${cmds.join('\n')}\n`);
      try {
        await run('debugfs', ['-w', '-f', `${tmp}.cmds`, tmp], { timeout: 600_000, env });
      } finally {
        await rm(`${tmp}.cmds`, { force: true });
      }
    });
    return finishImage(tmp, outPath, size);
  });
}
