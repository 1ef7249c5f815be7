// dm-verity trees against veritysetup itself (cryptsetup-bin): byte-identical output,
// `veritysetup verify` accepting ours, our verifier naming the first bad block.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../../common/exec.ts';
import {
  decodeVeritySuperblock,
  encodeVeritySuperblock,
  formatVerity,
  hashDataBlocks,
  isFormatError,
  verifyVerity,
  verityGeometry,
} from '../../../formats/index.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';

const SALT = 'a1'.repeat(32);
const UUID = '12345678-1234-4234-9234-123456789abc';

async function randomFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; done += 64 << 20)
      await fh.write(randomBytes(Math.min(64 << 20, bytes - done)));
  } finally {
    await fh.close();
  }
}

async function veritysetupRoot(data: string, hash: string): Promise<string> {
  const r = await run('veritysetup', ['format', data, hash, '--salt', SALT, '--uuid', UUID], {
    timeout: 120_000,
  });
  const m = /Root hash:\s+([0-9a-f]{64})/.exec(r.stdout);
  if (m?.[1] === undefined) throw new Error(`no root hash in ${r.stdout}`);
  return m[1];
}

for (const blocks of [1, 2, 127, 128, 129, 16385, 262144]) {
  test(`formatVerity() is byte-identical to veritysetup format for ${blocks} blocks`, async (t) => {
    const dir = await tempDir(t);
    const data = join(dir, 'data');
    await randomFile(data, blocks * 4096);
    const ref = await veritysetupRoot(data, join(dir, 'ref'));
    const ours = await formatVerity(data, { hashPath: join(dir, 'ours'), salt: SALT, uuid: UUID });
    t.is(ours.rootHash, ref);
    t.is(ours.dataBlocks, blocks);
    const [a, b] = await Promise.all([readFile(join(dir, 'ref')), readFile(join(dir, 'ours'))]);
    t.is(b.length, ours.hashSize);
    t.true(a.equals(b), 'hash files differ');
    const v = await run('veritysetup', ['verify', data, join(dir, 'ours'), ours.rootHash], {
      timeout: 120_000,
      reject: false,
    });
    t.is(v.exitCode, 0, v.stderr);
  });
}

for (const threads of [0, 2]) {
  test(`formatVerity() onProgress counts every data block once, in order, to the data size (threads ${threads})`, async (t) => {
    const dir = await tempDir(t);
    const data = join(dir, 'data');
    const blocks = 16385;
    await randomFile(data, blocks * 4096);
    const seen: [number, number][] = [];
    const r = await formatVerity(data, {
      hashPath: join(dir, 'ours'),
      salt: SALT,
      uuid: UUID,
      threads,
      onProgress: (done, total) => void seen.push([done, total]),
    });
    t.is(r.dataBlocks, blocks);
    t.true(seen.length > 1, 'several reports for 64 MiB');
    for (const [i, [done, total]] of seen.entries()) {
      t.is(total, blocks * 4096);
      t.true(done > (seen[i - 1]?.[0] ?? 0) && done % 4096 === 0, `report ${i}: ${done}`);
    }
    t.deepEqual(seen.at(-1), [blocks * 4096, blocks * 4096]);
  });
}

test('formatVerity() gives the same tree on 0 to 3 threads (tasks finishing out of order, past the read-ahead window)', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  // 70,001 blocks: 137 tasks of 512 blocks (the last of 369), more than the 64-task read-ahead window.
  await randomFile(data, 70_001 * 4096);
  const ref = await veritysetupRoot(data, join(dir, 'ref'));
  const refBytes = await readFile(join(dir, 'ref'));
  for (const threads of [0, 1, 2, 3]) {
    const hashPath = join(dir, `ours-${threads}`);
    const r = await formatVerity(data, { hashPath, salt: SALT, uuid: UUID, threads });
    t.is(r.rootHash, ref, `threads ${threads}`);
    t.true((await readFile(hashPath)).equals(refBytes), `threads ${threads}: hash file differs`);
  }
});

for (const threads of [1, 2, 3]) {
  test(`hashDataBlocks() on a file shorter than the blocks asked for throws E_VERITY_DATA_SHORT (threads ${threads})`, async (t) => {
    const dir = await tempDir(t);
    const data = join(dir, 'data');
    await randomFile(data, 20_000 * 4096 + 100);
    const e = await t.throwsAsync(async () => {
      for await (const _ of hashDataBlocks(data, 30_000, new Uint8Array(32), { threads })) {
        // drain
      }
    });
    t.true(isFormatError(e) && e.code === 'E_VERITY_DATA_SHORT', String(e));
    t.regex(e?.message ?? '', /file ends/);
  });
}

test('formatVerity() at a hash offset in the data file matches veritysetup --hash-offset', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  await randomFile(data, 300 * 4096);
  const copy = join(dir, 'copy');
  await writeFile(copy, await readFile(data));
  const ours = await formatVerity(data, { salt: SALT, uuid: UUID });
  t.is(ours.hashOffset, 300 * 4096);
  await run(
    'veritysetup',
    ['format', copy, copy, '--hash-offset', String(300 * 4096), '--salt', SALT, '--uuid', UUID],
    {
      timeout: 60_000,
    },
  );
  t.true((await readFile(data)).equals(await readFile(copy)));
  await verifyVerity(data, data, ours.rootHash, { hashOffset: ours.hashOffset });
});

test('16385 blocks give 129 + 2 + 1 tree blocks plus the superblock', (t) => {
  const g = verityGeometry(16385);
  t.deepEqual(
    g.levels.map((l) => l.blocks),
    [129, 2, 1],
  );
  t.is(g.hashSize, 544768);
});

test('seed and label give the same salt, uuid and tree twice, another label differs', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  await randomFile(data, 50 * 4096);
  const a = await formatVerity(data, { hashPath: join(dir, 'a'), seed: 's3cret', label: 'coreos-a' });
  const b = await formatVerity(data, { hashPath: join(dir, 'b'), seed: 's3cret', label: 'coreos-a' });
  const c = await formatVerity(data, { hashPath: join(dir, 'c'), seed: 's3cret', label: 'coreos-b' });
  t.deepEqual(a.rootHash, b.rootHash);
  t.true((await readFile(join(dir, 'a'))).equals(await readFile(join(dir, 'b'))));
  t.not(a.salt, c.salt);
  t.not(a.uuid, c.uuid);
});

test('formatVerity() refuses data not a multiple of 4096 unless pad is asked', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  await randomFile(data, 4096 * 3 + 100);
  const e = await t.throwsAsync(formatVerity(data, { hashPath: join(dir, 'h') }));
  t.true(isFormatError(e, 'E_VERITY_UNALIGNED'));
  const r = await formatVerity(data, { hashPath: join(dir, 'h'), pad: true, salt: SALT, uuid: UUID });
  t.is(r.dataBlocks, 4);
  t.is((await readFile(data)).length, 4 * 4096);
});

test('formatVerity() to a directory, or under a missing one, is E_VERITY_WRITE naming the hash path, leaving nothing', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  await randomFile(data, 4096 * 2);
  await mkdir(join(dir, 'taken'));
  for (const hashPath of [join(dir, 'taken'), join(dir, 'missing', 'h')]) {
    const e = await t.throwsAsync(formatVerity(data, { hashPath, salt: SALT, uuid: UUID }));
    t.true(isFormatError(e, 'E_VERITY_WRITE'), String(e));
    t.true(e?.message.startsWith(`Cannot `) && e.message.includes(hashPath), e?.message);
  }
  t.deepEqual((await readdir(dir)).sort(), ['data', 'taken']);
  t.deepEqual(await readdir(join(dir, 'taken')), []);
});

async function flip(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] ?? 0) ^ 0x5a;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

test('verifyVerity() names the first bad block in data, every tree level and the superblock', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  const blocks = 16385;
  await randomFile(data, blocks * 4096);
  const hash = join(dir, 'hash');
  const r = await formatVerity(data, { hashPath: hash, salt: SALT, uuid: UUID });
  await verifyVerity(data, hash, r.rootHash);
  const pristineData = await readFile(data);
  const pristineHash = await readFile(hash);
  const restore = async () => {
    await writeFile(data, pristineData);
    await writeFile(hash, pristineHash);
  };
  const cases: Array<{ file: string; at: number; expect: Record<string, unknown> }> = [
    { file: data, at: 5000 * 4096 + 17, expect: { area: 'data', block: 5000 } },
    { file: data, at: blocks * 4096 - 1, expect: { area: 'data', block: blocks - 1 } },
    { file: hash, at: 1 * 4096 + 3, expect: { area: 'hash', block: 1, level: 2 } },
    { file: hash, at: 3 * 4096 + 40, expect: { area: 'hash', block: 3, level: 1 } },
    { file: hash, at: 50 * 4096 + 9, expect: { area: 'hash', block: 50, level: 0 } },
  ];
  for (const c of cases) {
    await flip(c.file, c.at);
    const e = await t.throwsAsync(verifyVerity(data, hash, r.rootHash));
    t.true(isFormatError(e, 'E_VERITY_MISMATCH'), String(e));
    if (isFormatError(e)) t.like(e.details ?? {}, c.expect);
    await restore();
  }
  // Superblock: the salt (caught by the root check) and the magic (refused to decode).
  await flip(hash, 88);
  t.true(isFormatError(await t.throwsAsync(verifyVerity(data, hash, r.rootHash)), 'E_VERITY_MISMATCH'));
  await restore();
  await flip(hash, 0);
  t.true(isFormatError(await t.throwsAsync(verifyVerity(data, hash, r.rootHash)), 'E_VERITY_SB_MAGIC'));
  await restore();
  // veritysetup agrees the corrupted data is bad.
  await flip(data, 5000 * 4096);
  const v = await run('veritysetup', ['verify', data, hash, r.rootHash], { timeout: 60_000, reject: false });
  t.not(v.exitCode, 0);
});

test('decodeVeritySuperblock() survives thousands of mutated superblocks with typed errors', (t) => {
  const good = encodeVeritySuperblock({
    uuid: new Uint8Array(16).fill(7),
    algorithm: 'sha256',
    dataBlockSize: 4096,
    hashBlockSize: 4096,
    dataBlocks: 1000,
    salt: new Uint8Array(32).fill(1),
  });
  t.is(decodeVeritySuperblock(good).dataBlocks, 1000);
  const codes = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const m = good.slice(0, i % 7 === 0 ? (i * 13) % 600 : 4096);
    for (let k = 0; k < 1 + (i % 4); k++) {
      const at = (i * 7919 + k * 104729) % 520;
      if (at < m.length) m[at] = (i * 31 + k) & 0xff;
    }
    try {
      decodeVeritySuperblock(m);
    } catch (e) {
      t.true(isFormatError(e), String(e));
      if (isFormatError(e)) codes.add(e.code);
    }
  }
  t.true(codes.has('E_VERITY_SB_MAGIC'));
  t.true(codes.has('E_VERITY_SB_TRUNCATED'));
  t.true(codes.size >= 5, [...codes].join(','));
});

test('mway-image verity format then verify exits 0, and 1 naming the bad block after a flip', async (t) => {
  const dir = await tempDir(t);
  const data = join(dir, 'data');
  await randomFile(data, 10 * 4096);
  const f = await cli('mway-image', [
    'verity',
    'format',
    data,
    join(dir, 'h'),
    '--salt',
    SALT,
    '--uuid',
    UUID,
    '--json',
  ]);
  t.is(f.exitCode, 0, f.stderr);
  const r = jsonOut(f.stdout) as { rootHash: string };
  t.is(r.rootHash, await veritysetupRoot(data, join(dir, 'ref')));
  t.is((await cli('mway-image', ['verity', 'verify', data, join(dir, 'h'), r.rootHash])).exitCode, 0);
  await flip(data, 7 * 4096 + 5);
  const bad = await cli('mway-image', ['verity', 'verify', data, join(dir, 'h'), r.rootHash]);
  t.is(bad.exitCode, 1);
  t.regex(bad.stdout, /data block 7\b/);
  // A wrong root hash, with --json: refused with its code, like veritysetup verify refuses it.
  const wrong = r.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const w = await cli('mway-image', ['verity', 'verify', data, join(dir, 'h'), wrong, '--json']);
  t.is(w.exitCode, 1);
  t.like(jsonOut(w.stdout), {
    ok: false,
    error: { code: 'E_VERITY_MISMATCH', details: { area: 'hash' } },
  });
});
