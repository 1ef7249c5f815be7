// erofs images from mkfs.erofs: reproducible bytes, checked by fsck.erofs and dump.erofs.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { isFormatError, makeErofs } from '../../../formats/index.ts';
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

test('makeErofs() is reproducible, 4 KiB aligned, with our UUID and epoch', async (t) => {
  const dir = await tempDir(t);
  await tree(join(dir, 'a'), 1000);
  await tree(join(dir, 'b'), 2_000_000);
  const ra = await makeErofs(join(dir, 'a'), join(dir, 'a.img'), {
    sourceDateEpoch: EPOCH,
    uuid: UUID,
    rootOwner: true,
  });
  const rb = await makeErofs(join(dir, 'b'), join(dir, 'b.img'), {
    sourceDateEpoch: EPOCH,
    uuid: UUID,
    rootOwner: true,
  });
  t.is(ra.size % 4096, 0);
  const digest = async (p: string) =>
    createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  t.is(await digest(join(dir, 'a.img')), await digest(join(dir, 'b.img')));
  await run('fsck.erofs', [join(dir, 'a.img')], { timeout: 60_000 });
  const dump = await run('dump.erofs', [join(dir, 'a.img')], { timeout: 60_000 });
  t.regex(dump.stdout, new RegExp(`UUID:\\s+${UUID}`));
  t.is(rb.size, ra.size);
});

test('makeErofs() pads to a requested size and refuses one too small', async (t) => {
  const dir = await tempDir(t);
  await tree(join(dir, 'a'), 1000);
  const r = await makeErofs(join(dir, 'a'), join(dir, 'a.img'), { sourceDateEpoch: EPOCH, size: 1 << 20 });
  t.is(r.size, 1 << 20);
  t.is((await readFile(join(dir, 'a.img'))).length, 1 << 20);
  const e = await t.throwsAsync(
    makeErofs(join(dir, 'a'), join(dir, 'b.img'), { sourceDateEpoch: EPOCH, size: 4096 }),
  );
  t.true(isFormatError(e, 'E_FS_TOO_SMALL'), String(e));
  const m = await t.throwsAsync(makeErofs(join(dir, 'nope'), join(dir, 'c.img'), { sourceDateEpoch: EPOCH }));
  t.true(isFormatError(m, 'E_FS_SOURCE'), String(m));
});
