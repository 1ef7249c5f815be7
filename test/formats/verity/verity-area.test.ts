// buildVerityArea (the hash area in memory) and verifyVerity on data and hash areas inside a
// container file, against veritysetup: the same bytes as `veritysetup format` of the data
// alone, and the first bad block named wherever it is.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { buildVerityArea, isFormatError, uuidToBytes, verifyVerity } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const SALT = 'c3'.repeat(32);
const UUID = '87654321-4321-4321-8321-cba987654321';

/** junk(head) ‖ data ‖ junk(gap) ‖ area ‖ junk(tail), as a .mwl lays its members out. */
function container(head: number, data: Uint8Array, gap: number, area: Uint8Array): Buffer {
  return Buffer.concat([randomBytes(head), data, randomBytes(gap), area, randomBytes(777)]);
}

// 5000 blocks: past the inline limit, so worker threads read the data at its offset too.
for (const blocks of [1, 129, 5000]) {
  test(`buildVerityArea() at a data offset is veritysetup's hash area for ${blocks} blocks, and verifies in place`, async (t) => {
    const dir = await tempDir(t);
    const data = randomBytes(blocks * 4096);
    await writeFile(join(dir, 'data'), data);
    const ref = await run(
      'veritysetup',
      ['format', join(dir, 'data'), join(dir, 'ref'), '--salt', SALT, '--uuid', UUID],
      { timeout: 120_000 },
    );
    const root = /Root hash:\s+([0-9a-f]{64})/.exec(ref.stdout)?.[1] ?? 'no root hash';
    const box = join(dir, 'box');
    await writeFile(box, container(8192, data, 512, new Uint8Array(0)));
    const seen: number[] = [];
    const r = await buildVerityArea(box, {
      dataOffset: 8192,
      dataBlocks: blocks,
      salt: Buffer.from(SALT, 'hex'),
      uuid: uuidToBytes(UUID),
      onProgress: (done) => void seen.push(done),
    });
    t.is(r.rootHash, root);
    t.true(Buffer.from(r.area).equals(await readFile(join(dir, 'ref'))), 'hash areas differ');
    t.is(seen.at(-1), blocks * 4096);
    // Data and area inside one file at sector (not block) alignment, as in a .mwl.
    const hashOffset = 8192 + data.length + 512;
    await writeFile(box, container(8192, data, 512, r.area));
    const sb = await verifyVerity(box, box, r.rootHash, { dataOffset: 8192, hashOffset });
    t.is(sb.dataBlocks, blocks);
    const bytes = await readFile(box);
    bytes[8192 + (blocks - 1) * 4096 + 99]! ^= 1;
    await writeFile(box, bytes);
    const e = await t.throwsAsync(verifyVerity(box, box, r.rootHash, { dataOffset: 8192, hashOffset }));
    t.true(isFormatError(e, 'E_VERITY_MISMATCH'), String(e));
    if (isFormatError(e)) t.like(e.details ?? {}, { area: 'data', block: blocks - 1 });
  });
}

test('buildVerityArea() names a missing file and data shorter than the blocks asked for', async (t) => {
  const dir = await tempDir(t);
  const o = { dataBlocks: 4, salt: new Uint8Array(32), uuid: new Uint8Array(16) };
  t.true(isFormatError(await t.throwsAsync(buildVerityArea(join(dir, 'none'), o)), 'E_VERITY_DATA_MISSING'));
  await writeFile(join(dir, 'short'), randomBytes(4 * 4096));
  const e = await t.throwsAsync(buildVerityArea(join(dir, 'short'), { ...o, dataOffset: 512 }));
  t.true(isFormatError(e, 'E_VERITY_DATA_SHORT'), String(e));
});

test('verifyVerity() refuses offsets that are not sector multiples', async (t) => {
  const e = await t.throwsAsync(verifyVerity('/dev/null', '/dev/null', '0'.repeat(64), { dataOffset: 100 }));
  t.true(isFormatError(e, 'E_VERITY_BAD_OFFSET'), String(e));
});
