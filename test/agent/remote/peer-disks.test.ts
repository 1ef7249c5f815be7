// The disks fact: block devices read from sysfs. A fake /sys tree handed in as the root pins
// each attribute and the virtual-device rule; the host's own /sys is cross-checked against
// lsblk (util-linux), and gathered facts against the published schema.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { gatherDisks, mountedDevices, readDisks } from '../../../agent/remote/peer-disks.ts';
import { gatherFacts } from '../../../agent/remote/peer-facts.ts';
import { MAX_DISKS, peerFactsFormat } from '../../../control/wire/peer-facts.ts';
import { tempDir } from '../../helpers.ts';

async function device(root: string, name: string, files: Record<string, string>): Promise<void> {
  for (const [f, text] of Object.entries(files)) {
    const p = join(root, 'block', name, f);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, `${text}\n`);
  }
}

test('readDisks() reads size, model, serial, rotational and read-only; virtual devices only when mounted', async (t) => {
  const sys = await tempDir(t);
  await device(sys, 'vda', {
    dev: '254:0',
    size: '2097152',
    serial: 'web-1-root',
    'queue/rotational': '0',
    ro: '0',
  });
  await device(sys, 'sda', {
    dev: '8:0',
    size: '1953525168',
    'device/model': 'WDC WD10EZEX-00B',
    'device/serial': 'WD-WCC6Y1234567',
    'queue/rotational': '1',
    ro: '0',
  });
  await device(sys, 'sr0', {
    dev: '11:0',
    size: '2048',
    'device/model': 'QEMU DVD-ROM',
    ro: '1',
    'queue/rotational': '1',
  });
  await device(sys, 'loop0', { dev: '7:0', size: '8', ro: '0' }); // someone else's loop: skipped
  await device(sys, 'loop1', { dev: '7:1', size: '16', ro: '1', 'loop1p1/dev': '259:3' }); // our partition is mounted
  await device(sys, 'dm-0', { dev: '253:0', size: '4096', ro: '1', 'queue/rotational': '0' }); // our verity root
  await device(sys, 'ram0', { dev: '1:0', size: '8192' });
  await device(sys, 'zram0', { dev: '252:0', size: '8192' });
  await device(sys, 'bad', { dev: '8:16', size: 'lots' }); // unreadable size: not reported
  const got = await readDisks(sys, new Set(['253:0', '259:3', '0:21']));
  t.deepEqual(got, {
    'dm-0': { sizeBytes: 4096 * 512, rotational: false, readOnly: true },
    loop1: { sizeBytes: 16 * 512, rotational: false, readOnly: true },
    sda: {
      sizeBytes: 1953525168 * 512,
      model: 'WDC WD10EZEX-00B',
      serial: 'WD-WCC6Y1234567',
      rotational: true,
      readOnly: false,
    },
    sr0: { sizeBytes: 2048 * 512, model: 'QEMU DVD-ROM', rotational: true, readOnly: true },
    vda: { sizeBytes: 2097152 * 512, serial: 'web-1-root', rotational: false, readOnly: false },
  });
  t.deepEqual(Object.keys(await readDisks(sys)), ['sda', 'sr0', 'vda'], 'nothing mounted: no virtual device');
  t.deepEqual(await readDisks(join(sys, 'nonexistent')), {}, 'no sysfs: no disks');
});

test('readDisks() reports at most MAX_DISKS, first by name', async (t) => {
  const sys = await tempDir(t);
  for (let i = 0; i < MAX_DISKS + 5; i++)
    await device(sys, `sd${String(i).padStart(3, '0')}`, { size: '1', ro: '0' });
  const got = Object.keys(await readDisks(sys));
  t.is(got.length, MAX_DISKS);
  t.is(got[0], 'sd000');
  t.is(got.at(-1), `sd${String(MAX_DISKS - 1).padStart(3, '0')}`);
});

test('mountedDevices() takes major:minor from each mountinfo line', (t) => {
  const text = [
    '22 1 253:0 / / ro,relatime shared:1 - erofs /dev/mapper/root ro',
    '23 22 0:21 / /proc rw shared:2 - proc proc rw',
    'garbage',
  ].join('\n');
  t.deepEqual([...mountedDevices(text)], ['253:0', '0:21']);
});

test("the host's disks match lsblk, and gathered facts match the published schema", async (t) => {
  const lsblk = JSON.parse(
    (await execa('lsblk', ['-J', '-b', '-d', '-o', 'NAME,SIZE,RO,ROTA,MODEL,SERIAL'], { timeout: 10_000 }))
      .stdout,
  ) as {
    blockdevices: Array<{ name: string; size: number; ro: boolean; rota: boolean; model: string | null }>;
  };
  const ours = await gatherDisks();
  const physical = lsblk.blockdevices.filter((d) => !/^(loop|ram|zram|dm-)/.test(d.name));
  t.true(physical.length > 0, 'the host has a disk');
  for (const d of physical) {
    t.like(ours[d.name], { sizeBytes: d.size, readOnly: d.ro, rotational: d.rota }, d.name);
    if (d.model !== null) t.is(ours[d.name]?.model, d.model.trim(), d.name);
  }
  const facts = await gatherFacts();
  t.deepEqual(peerFactsFormat.parse(facts), facts);
  t.is(
    (() => {
      try {
        peerFactsFormat.parse({
          ...facts,
          disks: { vda: { sizeBytes: -1, rotational: false, readOnly: false } },
        });
        return 'accepted';
      } catch (e) {
        return (e as { path?: string }).path;
      }
    })(),
    'disks.vda.sizeBytes',
  );
});
