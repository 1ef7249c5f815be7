// The FAT and ISO 9660 readers against volumes made by tools nobody here wrote: mkfs.vfat +
// mcopy (dosfstools, mtools) for FAT12/16/32, genisoimage for ISO 9660 with Joliet, Rock Ridge
// or neither; labels cross-checked with util-linux blkid; hostile volumes refused with
// E_FS_UNREADABLE, never a hang or an internal error.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bytesReadAt,
  fileReadAt,
  probeVolume,
  readVolumeRootFiles,
  type VolumeInfo,
} from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const env = { MTOOLS_SKIP_CHECK: '1' };

async function blkid(path: string, tag: string): Promise<string> {
  const r = await execa('blkid', ['-p', '-o', 'value', '-s', tag, path], { timeout: 10_000 });
  return r.stdout.trim();
}

async function files(dir: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {
    'user-data': Buffer.from('#cloud-config\nhostname: web-7\n'),
    'meta-data': Buffer.from('instance-id: i-1\nlocal-hostname: web-7\n'),
    // Spans many clusters (and so follows a FAT chain).
    'network-config': randomBytes(70_000),
    empty: new Uint8Array(),
  };
  for (const [n, b] of Object.entries(out)) await writeFile(join(dir, n), b);
  return out;
}

async function read(path: string): Promise<{ info: VolumeInfo | undefined; got: Map<string, Uint8Array> }> {
  const h = await open(path, 'r');
  try {
    const r = fileReadAt(h);
    const info = await probeVolume(r, path);
    if (info === undefined) return { info, got: new Map() };
    const got = await readVolumeRootFiles(
      r,
      info,
      ['user-data', 'meta-data', 'network-config', 'empty', 'absent'],
      {
        maxBytes: 1 << 20,
        source: path,
      },
    );
    return { info, got };
  } finally {
    await h.close();
  }
}

for (const [fat, mib] of [
  ['12', 1],
  ['16', 20],
  ['32', 40],
] as const) {
  test(`readVolumeRootFiles() reads a FAT${fat} volume made by mkfs.vfat and mcopy, long names included`, async (t) => {
    const dir = await tempDir(t, 'mway-fat-');
    const want = await files(dir);
    const img = join(dir, 'seed.img');
    await execa('truncate', ['-s', `${mib}M`, img]);
    await execa('mkfs.vfat', ['-F', fat, '-s', '1', '-n', 'CIDATA', img], { timeout: 30_000 });
    await execa('mcopy', ['-i', img, ...Object.keys(want).map((n) => join(dir, n)), '::'], {
      timeout: 30_000,
      env,
    });
    const { info, got } = await read(img);
    t.deepEqual(info, { type: 'vfat', label: await blkid(img, 'LABEL') });
    t.is(info?.label, 'CIDATA');
    for (const [n, b] of Object.entries(want)) t.deepEqual(got.get(n), new Uint8Array(b), n);
    t.false(got.has('absent'));
  });
}

for (const [name, flags] of [
  ['Joliet and Rock Ridge', ['-joliet', '-rock']],
  ['Joliet only', ['-joliet']],
  ['Rock Ridge only', ['-rock']],
] as const) {
  test(`readVolumeRootFiles() reads an ISO 9660 volume made by genisoimage with ${name}`, async (t) => {
    const dir = await tempDir(t, 'mway-iso-');
    const want = await files(dir);
    const img = join(dir, 'seed.iso');
    await execa(
      'genisoimage',
      ['-quiet', '-output', img, '-volid', 'cidata', ...flags, ...Object.keys(want)],
      {
        cwd: dir,
        timeout: 30_000,
      },
    );
    const { info, got } = await read(img);
    t.deepEqual(info, { type: 'iso9660', label: await blkid(img, 'LABEL') });
    t.is(info?.label, 'cidata');
    for (const [n, b] of Object.entries(want)) t.deepEqual(got.get(n), new Uint8Array(b), n);
  });
}

test('probeVolume() says nothing of a volume that is neither FAT nor ISO 9660 (ext4, zeros)', async (t) => {
  const dir = await tempDir(t, 'mway-vol-');
  const img = join(dir, 'ext4.img');
  await execa('truncate', ['-s', '8M', img]);
  await execa('mkfs.ext4', ['-q', '-L', 'cidata', img], { timeout: 30_000 });
  t.is((await read(img)).info, undefined);
  t.is(await probeVolume(bytesReadAt(new Uint8Array(1 << 16))), undefined);
});

async function fatImage(t: ExecutionContext): Promise<Uint8Array> {
  const dir = await tempDir(t, 'mway-fatbad-');
  await files(dir);
  const img = join(dir, 'seed.img');
  await execa('truncate', ['-s', '1M', img]);
  await execa('mkfs.vfat', ['-s', '1', '-n', 'CIDATA', img], { timeout: 30_000 });
  await execa('mcopy', ['-i', img, join(dir, 'network-config'), join(dir, 'user-data'), '::'], {
    timeout: 30_000,
    env,
  });
  return new Uint8Array(await readFile(img));
}

async function refused(t: ExecutionContext, bytes: Uint8Array, maxBytes = 1 << 20) {
  const r = bytesReadAt(bytes);
  const e = await t.throwsAsync(async () => {
    const info = await probeVolume(r, 'bad.img');
    if (info === undefined) throw new Error('not probed');
    await readVolumeRootFiles(r, info, ['network-config', 'user-data'], { maxBytes, source: 'bad.img' });
  });
  t.is((e as { code?: string }).code, 'E_FS_UNREADABLE', e?.message);
  t.regex(e?.message ?? '', /bad\.img/);
}

test('a FAT volume cut short, with a looping cluster chain, or with a file above maxBytes is E_FS_UNREADABLE', async (t) => {
  const good = await fatImage(t);
  // Cut inside the data area: the chain runs past the end.
  await refused(t, good.subarray(0, 40_000));
  // Every FAT entry of the data clusters pointing at cluster 2: a loop, caught by the step bound.
  const loop = good.slice();
  const dv = new DataView(loop.buffer);
  const reserved = dv.getUint16(14, true);
  const fatStart = reserved * 512;
  const fatBytes = dv.getUint16(22, true) * 512;
  // FAT12 pairs: entries n, n+1 in 3 bytes; 0x002 for both is 02 20 00.
  for (let at = fatStart + 3; at + 3 <= fatStart + fatBytes; at += 3) loop.set([0x02, 0x20, 0x00], at);
  await refused(t, loop);
  await refused(t, good, 1000);
});

test('an ISO 9660 volume with a bad record length, a bad block size or no terminator is E_FS_UNREADABLE', async (t) => {
  const dir = await tempDir(t, 'mway-isobad-');
  await files(dir);
  const img = join(dir, 'seed.iso');
  await execa(
    'genisoimage',
    ['-quiet', '-output', img, '-volid', 'cidata', '-joliet', '-rock', 'user-data', 'network-config'],
    {
      cwd: dir,
      timeout: 30_000,
    },
  );
  const good = new Uint8Array(await readFile(img));
  const pvd = 16 * 2048;
  const badBlock = good.slice();
  badBlock.set([0x00, 0x03], pvd + 128);
  await refused(t, badBlock);
  // No terminator: every descriptor slot after the first is a copy of the primary one.
  const endless = good.slice(0, 64 * 2048);
  for (let i = 17; i < 64; i++) endless.set(good.subarray(pvd, pvd + 2048), i * 2048);
  await refused(t, endless);
  // The Joliet root's third record (after . and ..) shorter than a record's fixed part, then
  // with a name longer than the record.
  const joliet = good.subarray(17 * 2048, 18 * 2048);
  t.is(joliet[0], 2);
  const rootExtent = new DataView(joliet.buffer, joliet.byteOffset).getUint32(158, true);
  const third = rootExtent * 2048 + 34 * 2;
  const short = good.slice();
  short[third] = 20;
  await refused(t, short);
  const longName = good.slice();
  longName[third + 32] = 200;
  await refused(t, longName);
  await refused(t, good, 1000);
});
