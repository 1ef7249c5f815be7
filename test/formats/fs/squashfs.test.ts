// squashfs images from mksquashfs: reproducible across source mtimes, listed back by unsquashfs.
import test from 'ava';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { makeSquashfs } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

test('makeSquashfs() is reproducible and unsquashfs lists the tree owned by root at the epoch', async (t) => {
  const dir = await tempDir(t);
  for (const [d, m] of [
    ['a', 1000],
    ['b', 3_000_000],
  ] as const) {
    await mkdir(join(dir, d, 'usr/lib'), { recursive: true });
    await writeFile(join(dir, d, 'usr/lib/x.so'), Buffer.alloc(30_000, 1));
    await utimes(join(dir, d, 'usr/lib/x.so'), m, m);
    await makeSquashfs(join(dir, d), join(dir, `${d}.img`), {
      sourceDateEpoch: 1_700_000_000,
      rootOwner: true,
    });
  }
  const a = await readFile(join(dir, 'a.img'));
  t.true(a.equals(await readFile(join(dir, 'b.img'))));
  t.is(a.length % 4096, 0);
  const ls = await run('unsquashfs', ['-lln', join(dir, 'a.img')], { timeout: 30_000, env: { TZ: 'UTC' } });
  t.regex(ls.stdout, /-rw-r--r-- 0\/0\s+30000 2023-11-14 22:13 squashfs-root\/usr\/lib\/x\.so/);
});
