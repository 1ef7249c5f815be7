import test from 'ava';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeOutputDir, writeFileAtomic } from '../../common/atomic-file.ts';
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
  const e = await t.throwsAsync(writeFileAtomic(target, 'x', 0o600, { what: 'state file' }));
  t.is((e as { code?: string }).code, 'E_FILE_WRITE');
  // The message names the caller's path and why, not a temporary file's errno.
  t.is(e?.message, `Cannot write state file ${target}: it is a directory`);
  t.deepEqual(await readdir(dir), ['taken']);
  t.deepEqual(await readdir(target), ['child']);
});

test('an output that cannot be written is E_FILE_WRITE naming the path, and nothing is left behind', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  // The directory a file goes in is named when it is that directory that cannot be made.
  const cases: [() => Promise<unknown>, string, RegExp][] = [
    [() => writeFileAtomic(join(file, 'under'), 'x'), file, /a file is in the way/],
    [() => makeOutputDir(join(file, 'sub')), join(file, 'sub'), /not a directory/],
    [() => makeOutputDir(file), file, /a file is in the way/],
  ];
  for (const [p, path, why] of cases) {
    const e = await t.throwsAsync(p());
    t.is((e as { code?: string }).code, 'E_FILE_WRITE', path);
    t.true(e?.message.includes(path), e?.message);
    t.regex(e?.message ?? '', why);
  }
  t.deepEqual(await readdir(dir), ['file']);
});

test('makeOutputDir gives the directories it makes the mode asked for under umask 000', async (t) => {
  const dir = await tempDir(t);
  const old = process.umask(0);
  try {
    await makeOutputDir(join(dir, 'a', 'b'), { mode: 0o700 });
  } finally {
    process.umask(old);
  }
  t.is((await stat(join(dir, 'a'))).mode & 0o777, 0o700);
  t.is((await stat(join(dir, 'a', 'b'))).mode & 0o777, 0o700);
});
