// The ustar header table against GNU tar, both ways: tar lists and extracts what we encode,
// our decoder reads what tar writes, and hostile headers only ever give the coded errors.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import {
  decodeUstarHeader,
  encodeUstarHeader,
  isFormatError,
  TAR_BLOCK,
  USTAR_HEADER,
} from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const pad = (n: number) => Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;

test('GNU tar lists and extracts a member whose header encodeUstarHeader() wrote', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.from('hello, tar\n');
  const h = encodeUstarHeader({
    name: 'hello.txt',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 1_700_000_000,
    typeflag: '0',
  });
  // GNU tar's checksum form: six octal digits, NUL, space.
  t.is(Buffer.from(USTAR_HEADER.raw(h, 'chksum')).toString('latin1').slice(6), '\0 ');
  const archive = Buffer.alloc(TAR_BLOCK + pad(data.length) + 2 * TAR_BLOCK);
  archive.set(h, 0);
  archive.set(data, TAR_BLOCK);
  await writeFile(join(dir, 'a.tar'), archive);
  const list = await run('tar', ['--numeric-owner', '--utc', '-tvf', join(dir, 'a.tar')], {
    timeout: 30_000,
  });
  t.regex(list.stdout, /^-rw-r--r-- 0\/0\s+11 2023-11-14 22:13 hello\.txt$/m);
  const out = await run('tar', ['-xOf', join(dir, 'a.tar'), 'hello.txt'], { timeout: 30_000 });
  t.is(out.stdout, 'hello, tar\n');
});

test('decodeUstarHeader() reads the header GNU tar writes in ustar format', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'payload.bin'), Buffer.alloc(12_345, 7));
  await run(
    'tar',
    [
      '--format=ustar',
      '--owner=0',
      '--group=0',
      '--mode=0640',
      '--mtime=@1700000000',
      '-C',
      dir,
      '-cf',
      join(dir, 'b.tar'),
      'payload.bin',
    ],
    { timeout: 30_000 },
  );
  const bytes = await readFile(join(dir, 'b.tar'));
  t.deepEqual(decodeUstarHeader(bytes.subarray(0, TAR_BLOCK), 0), {
    name: 'payload.bin',
    mode: 0o640,
    uid: 0,
    gid: 0,
    size: 12_345,
    mtime: 1_700_000_000,
    typeflag: '0',
  });
  // The end-of-archive block is a zero block.
  t.is(
    decodeUstarHeader(bytes.subarray(TAR_BLOCK + pad(12_345), TAR_BLOCK + pad(12_345) + TAR_BLOCK), 0),
    null,
  );
});

test('decodeUstarHeader() gives only coded errors for short, mutated and foreign headers', (t) => {
  const good = encodeUstarHeader({
    name: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 1,
    mtime: 5,
    typeflag: '0',
  });
  t.true(
    isFormatError(
      t.throws(() => decodeUstarHeader(good.subarray(0, 100), 0)),
      'E_TAR_TRUNCATED',
    ),
  );
  const codes = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const h = Uint8Array.from(good);
    h[(i * 7919) % TAR_BLOCK] = (i * 31) & 0xff;
    if (i % 3 === 0) h[(i * 104729) % TAR_BLOCK] = (i * 17) & 0xff;
    try {
      decodeUstarHeader(h, 0);
    } catch (e) {
      t.true(isFormatError(e), String(e));
      if (isFormatError(e)) codes.add(e.code);
    }
  }
  t.true(codes.has('E_TAR_CHECKSUM'), [...codes].join(','));
  // A consistent checksum over a non-ustar magic (old GNU "ustar  ") is still refused.
  const gnu = Uint8Array.from(good);
  gnu.set(Buffer.from('ustar  \0', 'latin1'), 257);
  USTAR_HEADER.write(gnu, 'chksum', 0);
  gnu.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of gnu) sum += b;
  USTAR_HEADER.write(gnu, 'chksum', sum);
  t.true(
    isFormatError(
      t.throws(() => decodeUstarHeader(gnu, 0)),
      'E_TAR_MAGIC',
    ),
  );
  // A bad number with a matching checksum names the field.
  const badSize = Uint8Array.from(good);
  badSize.set(Buffer.from('0000000000z\0', 'latin1'), 124);
  badSize.fill(0x20, 148, 156);
  sum = 0;
  for (const b of badSize) sum += b;
  USTAR_HEADER.write(badSize, 'chksum', sum);
  const e = t.throws(() => decodeUstarHeader(badSize, 0));
  t.true(isFormatError(e, 'E_TAR_FIELD'));
  t.regex(e?.message ?? '', /size/);
});
