// GPT disks checked by sfdisk --dump and sgdisk -v (fdisk, gdisk), plus the reader's
// refusals: bad CRCs, overlaps, backup fallback, and mutated headers.

import { createHash } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import test from 'ava';
import { run } from '../../../common/exec.ts';
import {
  checkGptRedundancy,
  DPS,
  type FormatCode,
  isFormatError,
  readGpt,
  writeGpt,
} from '../../../formats/index.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';

/** A type GUID of a disk format's own (MilkyWayLinux's data partition), not in the DPS table. */
const OWN_DATA = '7cb9e8a5-83b2-4e54-8857-8ee53cb31676';

async function makeDisk(dir: string, name = 'disk.img'): Promise<string> {
  const img = join(dir, 'payload');
  const payload = Buffer.alloc(3 << 20);
  payload.fill(7, 0, 4096);
  payload.fill(9, 2 << 20, (2 << 20) + 4096);
  await writeFile(img, payload);
  const disk = join(dir, name);
  await writeGpt(disk, {
    sizeBytes: 64 << 20,
    diskGuid: '11111111-2222-4333-8444-555555555555',
    partitions: [
      {
        name: 'esp',
        type: DPS.esp,
        uuid: 'aaaaaaaa-2222-4333-8444-555555555555',
        sizeBytes: 8 << 20,
        image: img,
      },
      {
        name: 'root_1',
        type: DPS.root,
        uuid: 'bbbbbbbb-2222-4333-8444-555555555555',
        sizeBytes: 16 << 20,
        attributes: { readOnly: true, noAuto: true },
      },
      {
        name: 'data',
        type: OWN_DATA,
        uuid: 'cccccccc-2222-4333-8444-555555555555',
        sizeBytes: 4 << 20,
        attributes: { growFs: true },
      },
    ],
  });
  return disk;
}

test('writeGpt() disks are valid for sgdisk and show the exact layout in sfdisk --dump', async (t) => {
  const dir = await tempDir(t);
  const disk = await makeDisk(dir);
  const dump = (await run('sfdisk', ['--dump', disk], { timeout: 30_000 })).stdout;
  t.regex(dump, /label-id: 11111111-2222-4333-8444-555555555555/);
  t.regex(
    dump,
    /start=\s+2048, size=\s+16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAAAAAA-2222-4333-8444-555555555555, name="esp"/,
  );
  t.regex(
    dump,
    /start=\s+18432, size=\s+32768, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=BBBBBBBB-[^,]+, name="root_1", attrs="GUID:60,63"/,
  );
  t.regex(
    dump,
    /start=\s+51200, size=\s+8192, type=7CB9E8A5-83B2-4E54-8857-8EE53CB31676, uuid=CCCCCCCC-[^,]+, name="data", attrs="GUID:59"/,
  );
  const v = await run('sgdisk', ['-v', disk], { timeout: 30_000 });
  t.regex(v.stdout, /No problems found/);
  const g = await readGpt(disk, { typeNames: { ...DPS, data: OWN_DATA } });
  t.deepEqual(
    g.partitions.map((p) => [p.name, p.typeName, p.flags.readOnly]),
    [
      ['esp', 'esp', false],
      ['root_1', 'root', true],
      ['data', 'data', false],
    ],
  );
  // Without a table of its own, only DPS types have names.
  t.deepEqual(
    (await readGpt(disk)).partitions.map((p) => p.typeName),
    ['esp', 'root', undefined],
  );
  // The image landed in partition 1 and the disk stayed sparse.
  const bytes = await readFile(disk);
  t.is(bytes[2048 * 512], 7);
  t.is(bytes[2048 * 512 + (2 << 20)], 9);
  t.true((await stat(disk)).blocks * 512 < 1 << 20, 'disk is not sparse');
  const again = await makeDisk(dir, 'again.img');
  const h = async (p: string) =>
    createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  t.is(await h(disk), await h(again));
});

async function patch(path: string, at: number, value: number): Promise<void> {
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from([value]), 0, 1, at);
  await fh.close();
}

test('readGpt() falls back to the backup header and rejects bad CRCs and overlaps', async (t) => {
  const dir = await tempDir(t);
  const disk = await makeDisk(dir);
  await patch(disk, 512 + 40, 0x77);
  const g = await readGpt(disk);
  t.true(g.usedBackup);
  t.is(g.partitions.length, 3);
  const last = (64 << 20) - 512;
  await patch(disk, last + 40, 0x77);
  t.true(isFormatError(await t.throwsAsync(readGpt(disk)), 'E_GPT_HEADER_CRC'));
  // Overlap with valid CRCs: partition 2 starts inside partition 1.
  const d2 = await makeDisk(dir, 'd2.img');
  const b = await readFile(d2);
  b.writeBigUInt64LE(4096n, 1024 + 128 + 32);
  const ecrc = crc32(b.subarray(1024, 1024 + 16384)) >>> 0;
  b.writeUInt32LE(ecrc, 512 + 88);
  b.writeUInt32LE(0, 512 + 16);
  b.writeUInt32LE(crc32(b.subarray(512, 512 + 92)) >>> 0, 512 + 16);
  await writeFile(d2, b);
  t.true(isFormatError(await t.throwsAsync(readGpt(d2)), 'E_GPT_OVERLAP'));
});

test('readGpt() survives thousands of mutated headers and entry arrays with typed errors', async (t) => {
  const dir = await tempDir(t);
  const disk = await makeDisk(dir);
  const good = await readFile(disk);
  const m = join(dir, 'm.img');
  await writeFile(m, good);
  const fh = await open(m, 'r+');
  const codes = new Set<string>();
  try {
    for (let i = 0; i < 2000; i++) {
      const at = i % 2 === 0 ? 512 + ((i * 7919) % 92) : 1024 + ((i * 104729) % 512);
      const lastAt = good.length - 512 + ((i * 31) % 92);
      await fh.write(Buffer.from([(i * 37 + 1) & 0xff]), 0, 1, at);
      await fh.write(Buffer.from([(i * 53 + 3) & 0xff]), 0, 1, lastAt);
      try {
        await readGpt(m);
      } catch (e) {
        t.true(isFormatError(e), String(e));
        if (isFormatError(e)) codes.add(e.code);
      }
      await fh.write(good.subarray(at, at + 1), 0, 1, at);
      await fh.write(good.subarray(lastAt, lastAt + 1), 0, 1, lastAt);
    }
  } finally {
    await fh.close();
  }
  t.true(codes.size >= 2, [...codes].join(','));
});

test('mway-image gpt show --json lists the partitions', async (t) => {
  const dir = await tempDir(t);
  const disk = await makeDisk(dir);
  const r = await cli('mway-image', ['gpt', 'show', disk, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const j = jsonOut(r.stdout) as {
    partitions: Array<{ name: string; firstLba: string; flags: { readOnly: boolean } }>;
  };
  t.deepEqual(
    j.partitions.map((p) => [p.name, p.firstLba, p.flags.readOnly]),
    [
      ['esp', '2048', false],
      ['root_1', '18432', true],
      ['data', '51200', false],
    ],
  );
  const bad = await cli('mway-image', ['gpt', 'show', join(dir, 'payload')]);
  t.not(bad.exitCode, 0);
  t.regex(bad.stderr, /E_GPT_MAGIC/);
});

test('readGpt() decodes a disk sgdisk made, field for field as sgdisk reports them', async (t) => {
  const dir = await tempDir(t);
  const disk = join(dir, 'sg.img');
  await writeFile(disk, Buffer.alloc(0));
  await run('truncate', ['-s', '32M', disk], { timeout: 10_000 });
  await run(
    'sgdisk',
    [
      '-U',
      '11111111-2222-4333-8444-555555555555',
      '-n',
      '1:2048:+4M',
      '-t',
      '1:ef00',
      '-c',
      '1:EFI system',
      '-u',
      '1:aaaaaaaa-2222-4333-8444-555555555555',
      '-n',
      '2:0:+8M',
      '-t',
      '2:8304',
      '-c',
      '2:root_ünï',
      '-A',
      '2:set:60',
      disk,
    ],
    { timeout: 30_000 },
  );
  const g = await readGpt(disk);
  t.false(g.usedBackup);
  t.is(g.diskGuid, '11111111-2222-4333-8444-555555555555');
  const info = (await run('sgdisk', ['-i', '2', disk], { timeout: 30_000 })).stdout;
  const p2 = g.partitions[1];
  t.is(g.partitions.length, 2);
  t.is(g.partitions[0]?.type, DPS.esp);
  t.is(g.partitions[0]?.uuid, 'aaaaaaaa-2222-4333-8444-555555555555');
  t.is(g.partitions[0]?.name, 'EFI system');
  t.is(p2?.type, DPS.root);
  t.is(p2?.name, 'root_ünï');
  t.true(p2?.flags.readOnly);
  t.regex(info, new RegExp(`First sector: ${p2?.firstLba} `));
  t.regex(info, new RegExp(`Last sector: ${p2?.lastLba} `));
  t.regex(info, new RegExp(`Partition unique GUID: ${p2?.uuid}`, 'i'));
});

test('checkGptRedundancy() names a damaged primary, a missing or damaged backup and a bad protective MBR, as sgdisk -v does', async (t) => {
  const dir = await tempDir(t);
  const good = await makeDisk(dir, 'good.img');
  const clean = checkGptRedundancy(good);
  t.deepEqual([clean.primary, clean.backup, clean.protectiveMbr], [undefined, undefined, undefined]);
  const variant = async (name: string, spoil: (path: string) => Promise<void>) => {
    const p = join(dir, name);
    await writeFile(p, await readFile(good));
    await spoil(p);
    return p;
  };
  const poke = async (p: string, at: number, bytes: number[]) => {
    const fh = await open(p, 'r+');
    await fh.write(Buffer.from(bytes), 0, bytes.length, at);
    await fh.close();
  };
  const size = (await stat(good)).size;
  const cases: [string, (p: string) => Promise<void>, 'primary' | 'backup' | 'protectiveMbr', FormatCode][] =
    [
      [
        'cut-512',
        (p) => import('node:fs/promises').then((f) => f.truncate(p, size - 512)),
        'backup',
        'E_GPT_BACKUP',
      ],
      ['backup-header', (p) => poke(p, size - 512 + 20, [0xde, 0xad]), 'backup', 'E_GPT_BACKUP'],
      ['backup-entries', (p) => poke(p, size - 512 - 32 * 512 + 60, [0x41]), 'backup', 'E_GPT_BACKUP'],
      ['primary-header', (p) => poke(p, 512 + 20, [0xde, 0xad]), 'primary', 'E_GPT_HEADER_CRC'],
      ['primary-entries', (p) => poke(p, 1024 + 60, [0x41]), 'primary', 'E_GPT_ENTRIES_CRC'],
      ['mbr-signature', (p) => poke(p, 510, [0, 0]), 'protectiveMbr', 'E_GPT_PMBR'],
      ['mbr-type', (p) => poke(p, 446 + 4, [0x83]), 'protectiveMbr', 'E_GPT_PMBR'],
      ['mbr-size', (p) => poke(p, 446 + 12, [1, 0, 0, 0]), 'protectiveMbr', 'E_GPT_PMBR'],
    ];
  for (const [name, spoil, which, code] of cases) {
    const p = await variant(`${name}.img`, spoil);
    const r = checkGptRedundancy(p);
    t.is(r[which]?.code, code, name);
    // The reader still reads such a disk (a firmware would boot it): only a verifier refuses it.
    if (which !== 'primary' || name !== 'primary-header') t.truthy(await readGpt(p), name);
    // sgdisk (gdisk, written by others) agrees that each of these disks has a problem — except
    // a short 0xEE record, which it tolerates although UEFI 2.10 §5.2.3 says "size of the disk minus one".
    if (name === 'mbr-size') continue;
    const v = await run('sgdisk', ['-v', p], { timeout: 30_000, reject: false });
    const out = `${v.stdout}${v.stderr}`;
    t.true(
      !/^No problems found/m.test(out) || /corrupt|caution|problem:|warning/i.test(out),
      `${name}: sgdisk -v sees no problem: ${out}`,
    );
  }
  const v = await run('sgdisk', ['-v', good], { timeout: 30_000, reject: false });
  t.regex(`${v.stdout}`, /No problems found/);
});

test('readGpt() refuses a FIFO by type instead of waiting for a writer', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'disk.fifo');
  await run('mkfifo', [fifo], { timeout: 10_000 });
  const e = await t.throwsAsync(() => readGpt(fifo));
  t.is((e as { code?: string }).code, 'E_NOT_REGULAR_FILE');
});
