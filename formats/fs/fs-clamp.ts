// A copy of a source tree with every timestamp set to SOURCE_DATE_EPOCH and owners
// kept, for tools that store per-file mtimes whatever their flags (erofs-utils 1.5).
import { cp, lchown, lstat, lutimes, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempPathFor } from './fs-image.ts';

/** Runs `body` on a clamped copy of `srcDir` placed next to `near`, removed afterwards. */
export async function withClampedTree<T>(
  srcDir: string,
  near: string,
  epoch: number,
  body: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = tempPathFor(near);
  try {
    await cp(srcDir, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: false });
    // Children first, so setting a file's times never touches its directory's afterwards.
    const walk = async (src: string, dst: string): Promise<void> => {
      const st = await lstat(src);
      if (st.isDirectory()) {
        for (const name of (await readdir(src)).sort()) await walk(join(src, name), join(dst, name));
      }
      await lchown(dst, st.uid, st.gid);
      await lutimes(dst, epoch, epoch);
    };
    await walk(srcDir, dir);
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
