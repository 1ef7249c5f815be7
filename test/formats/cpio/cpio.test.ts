// newc archives read back by GNU cpio (-it listing, -idv extraction) and by zstd.
import test from 'ava';
import { lstat, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { type CpioEntry, isFormatError, readCpio, writeCpio } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const entries: CpioEntry[] = [
  { path: 'init', type: 'file', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { path: 'bin', type: 'dir' },
  { path: 'bin/sh', type: 'symlink', target: 'busybox' },
  { path: 'bin/busybox', type: 'file', data: Buffer.alloc(10_001, 5), mode: 0o755 },
  { path: 'dev', type: 'dir' },
  { path: 'dev/console', type: 'char', major: 5, minor: 1, mode: 0o600 },
];

test('writeCpio() archives are deterministic and GNU cpio extracts the identical tree', async (t) => {
  const dir = await tempDir(t);
  const a = await writeCpio(entries, { sourceDateEpoch: 1_700_000_000 });
  const b = await writeCpio([...entries].reverse(), { sourceDateEpoch: 1_700_000_000 });
  t.true(Buffer.from(a).equals(Buffer.from(b)));
  const list = await run('cpio', ['-it', '--quiet'], { input: a, timeout: 30_000 });
  t.deepEqual(list.stdout.trim().split('\n'), ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init']);
  const verbose = await run('cpio', ['-itv', '--quiet'], { input: a, timeout: 30_000, env: { TZ: 'UTC' } });
  t.regex(verbose.stdout, /crw------- +1 root +root +5, +1 Nov 14 +2023 dev\/console/);
  const out = join(dir, 'x');
  await run('cpio', ['-idvm', '--quiet', '-D', out], { input: a, timeout: 30_000 });
  t.is(await readFile(join(out, 'init'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.is((await lstat(join(out, 'init'))).mode & 0o7777, 0o755);
  t.true((await readFile(join(out, 'bin/busybox'))).equals(Buffer.alloc(10_001, 5)));
  t.is(await readlink(join(out, 'bin/sh')), 'busybox');
  t.true((await lstat(join(out, 'dev/console'))).isCharacterDevice());
  t.is(Math.floor((await lstat(join(out, 'init'))).mtimeMs / 1000), 1_700_000_000);
});

test('readCpio() decodes an archive GNU cpio -H newc wrote, member for member', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await run('mkdir', ['-p', join(src, 'etc')], { timeout: 10_000 });
  await writeFile(join(src, 'etc/hostname'), 'milkyway\n');
  await writeFile(join(src, 'big'), Buffer.alloc(70_001, 3));
  const list = 'etc\netc/hostname\nbig\n';
  const made = await run('cpio', ['-o', '-H', 'newc', '--quiet', '--reproducible'], {
    input: list,
    cwd: src,
    timeout: 30_000,
    binary: true,
  });
  const members = readCpio(made.stdoutBytes ?? new Uint8Array());
  t.deepEqual(
    members.map((m) => [m.path, m.data.length, m.mode & 0o170000]),
    [
      ['etc', 0, 0o040000],
      ['etc/hostname', 9, 0o100000],
      ['big', 70_001, 0o100000],
    ],
  );
  t.is(Buffer.from(members[1]?.data ?? []).toString(), 'milkyway\n');
  t.true(Buffer.from(members[2]?.data ?? []).equals(Buffer.alloc(70_001, 3)));
});

test('writeCpio() zstd output decompresses with zstd to the plain archive', async (t) => {
  const dir = await tempDir(t);
  const plain = await writeCpio(entries, { sourceDateEpoch: 5 });
  const z = await writeCpio(entries, { sourceDateEpoch: 5, compress: 'zstd' });
  await writeFile(join(dir, 'a.zst'), z);
  const d = await run('zstd', ['-dc', join(dir, 'a.zst')], { timeout: 30_000, binary: true });
  t.true(Buffer.from(d.stdoutBytes ?? new Uint8Array()).equals(Buffer.from(plain)));
  t.true(
    isFormatError(
      await t.throwsAsync(writeCpio([{ path: '../x', type: 'dir' }], { sourceDateEpoch: 5 })),
      'E_CPIO_BAD_PATH',
    ),
  );
});

test('readCpio() reads our archives back and survives thousands of mutated headers', async (t) => {
  const a = await writeCpio(entries, { sourceDateEpoch: 1_700_000_000 });
  const members = readCpio(a);
  t.deepEqual(
    members.map((m) => m.path),
    ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init'],
  );
  t.is(Buffer.from(members[2]?.data ?? []).toString(), 'busybox');
  const codes = new Set<string>();
  for (let i = 0; i < 4000; i++) {
    const m = Buffer.from(a.slice(0, i % 5 === 0 ? (i * 7) % a.length : a.length));
    const at = (i * 7919) % Math.min(m.length || 1, 400);
    if (m.length > 0) m[at] = (i * 31) & 0xff;
    try {
      readCpio(m);
    } catch (e) {
      t.true(isFormatError(e), String(e));
      if (isFormatError(e)) codes.add(e.code);
    }
  }
  t.true(
    codes.has('E_CPIO_MAGIC') && codes.has('E_CPIO_TRUNCATED') && codes.has('E_CPIO_FIELD'),
    [...codes].join(','),
  );
});
