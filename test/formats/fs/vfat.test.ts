// FAT images from mkfs.vfat + mcopy: reproducible across time, read back by mtools, clean for fsck.vfat.
import test from 'ava';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { isFormatError, makeVfat } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const EPOCH = 1_700_000_000;

test('makeVfat() is reproducible, keeps contents, clamps dates and checks the volume id', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(join(src, 'EFI/BOOT'), { recursive: true });
  await writeFile(join(src, 'EFI/BOOT/BOOTX64.EFI'), Buffer.alloc(50_000, 9));
  const a = await makeVfat(src, join(dir, 'a.img'), { sourceDateEpoch: EPOCH, volumeId: '1234abcd' });
  await new Promise((r) => setTimeout(r, 1100));
  await utimes(join(src, 'EFI/BOOT/BOOTX64.EFI'), 5, 5);
  await makeVfat(src, join(dir, 'b.img'), { sourceDateEpoch: EPOCH, volumeId: '1234abcd' });
  t.true((await readFile(join(dir, 'a.img'))).equals(await readFile(join(dir, 'b.img'))));
  t.is(a.size % 4096, 0);
  const fsck = await run('fsck.vfat', ['-n', join(dir, 'a.img')], { timeout: 30_000, reject: false });
  t.is(fsck.exitCode, 0, fsck.stdout);
  const env = { MTOOLS_SKIP_CHECK: '1', TZ: 'UTC' };
  await run('mcopy', ['-i', join(dir, 'a.img'), '::/EFI/BOOT/BOOTX64.EFI', join(dir, 'out')], {
    timeout: 30_000,
    env,
  });
  t.true((await readFile(join(dir, 'out'))).equals(Buffer.alloc(50_000, 9)));
  const ls = await run('mdir', ['-i', join(dir, 'a.img'), '::/EFI/BOOT'], { timeout: 30_000, env });
  t.regex(ls.stdout, /2023-11-14\s+22:13/);
  t.regex(ls.stdout, /1234-ABCD/);
  const e = await t.throwsAsync(
    makeVfat(src, join(dir, 'c.img'), { sourceDateEpoch: EPOCH, volumeId: 'xyz' }),
  );
  t.true(isFormatError(e, 'E_FS_BAD_VOLUME_ID'));
});
