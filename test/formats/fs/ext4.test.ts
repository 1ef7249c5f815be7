// ext4 images from mkfs.ext4 -d: reproducible across source mtimes/ctimes, clean for e2fsck.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { makeExt4 } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const EPOCH = 1_700_000_000;
const UUID = '12345678-1234-4234-9234-123456789abc';

async function tree(dir: string, mtime: number): Promise<void> {
  await mkdir(join(dir, 'etc/app'), { recursive: true });
  await writeFile(join(dir, 'etc/app/conf'), 'x=1\n');
  await writeFile(join(dir, 'big'), Buffer.alloc(70_000, 3));
  await symlink('app/conf', join(dir, 'etc/link'));
  await utimes(join(dir, 'big'), mtime, mtime);
}

test('makeExt4() is reproducible (ctime, mtime, UUID) and passes e2fsck', async (t) => {
  const dir = await tempDir(t);
  await tree(join(dir, 'a'), 1000);
  const opts = { sourceDateEpoch: EPOCH, uuid: UUID, rootOwner: true };
  const ra = await makeExt4(join(dir, 'a'), join(dir, 'a.img'), opts);
  await new Promise((r) => setTimeout(r, 1100));
  await tree(join(dir, 'b'), 2_000_000);
  await makeExt4(join(dir, 'b'), join(dir, 'b.img'), opts);
  const digest = async (p: string) =>
    createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  t.is(await digest(join(dir, 'a.img')), await digest(join(dir, 'b.img')));
  t.is(ra.size % 4096, 0);
  const fsck = await run('e2fsck', ['-fn', join(dir, 'a.img')], { timeout: 60_000, reject: false });
  t.is(fsck.exitCode, 0, fsck.stdout);
  const st = await run('debugfs', ['-R', 'stat /big', join(dir, 'a.img')], { timeout: 60_000 });
  t.regex(st.stdout, /ctime: 0x6553f100/);
  t.regex(st.stdout, /User:\s+0\s+Group:\s+0/);
});
