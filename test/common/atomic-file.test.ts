import test from 'ava';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.ts';
import { tempDir } from '../helpers.ts';

test('writeFileAtomic replaces the file with exactly the mode asked for, whatever the umask', async (t) => {
  const dir = await tempDir(t);
  const f = join(dir, 'sub', 'state.json');
  const old = process.umask(0o077);
  try {
    await writeFileAtomic(f, 'one', 0o644);
    await writeFileAtomic(f, 'two', 0o640);
  } finally {
    process.umask(old);
  }
  t.is(await readFile(f, 'utf8'), 'two');
  t.is((await stat(f)).mode & 0o777, 0o640);
  t.deepEqual(await readdir(join(dir, 'sub')), ['state.json']);
});

test('a failed rename leaves the target as it was and no temporary file', async (t) => {
  const dir = await tempDir(t);
  const target = join(dir, 'taken');
  await mkdir(join(target, 'child'), { recursive: true });
  await t.throwsAsync(writeFileAtomic(target, 'x'), { code: 'EISDIR' } as never);
  t.deepEqual(await readdir(dir), ['taken']);
  t.deepEqual(await readdir(target), ['child']);
});
