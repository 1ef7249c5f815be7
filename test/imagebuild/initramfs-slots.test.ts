// /init's A/B slot choice (imagebuild/initramfs-slots.ts) run by busybox ash on a disk image:
// the same choices the boot chain's rules make, the trial's tries written into both GPT copies
// with CRCs that sgdisk and our reader accept, the root hash read back from the GUIDs, the
// fallback once the try is spent, and a clear stop when no slot is bootable.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../common/exec.ts';
import { readGpt, writePartitionEntries } from '../../formats/index.ts';
import { guidDiskHex, initramfsInit } from '../../imagebuild/initramfs-init.ts';
import { slotChoiceScript, slotTypes } from '../../imagebuild/initramfs-slots.ts';
import { encodeSlot, installToSlot, readDiskSlots, verifyBundle } from '../../update/index.ts';
import { tempDir } from '../helpers.ts';
import { devKeys, makeBundle, makeCoreos, makeSlotDisk, NOW } from '../update/_slot-disk.ts';

/** The helpers /init defines before the slot choice, taken from the generated /init itself. */
function initHelpers(): string {
  const init = initramfsInit({ modulesList: '/x', shaNiList: '/y' });
  const pick = (name: string) => {
    const line = init.split('\n').find((l) => l.startsWith(`${name}() {`));
    if (line === undefined) throw new Error(`no ${name}() in /init`);
    return line;
  };
  return [pick('hexblocks'), pick('le')].join('\n');
}

async function choose(dir: string, disk: string): Promise<{ out: string; code: number }> {
  const { root, verity } = slotTypes();
  const script = join(dir, 'choose.sh');
  await writeFile(
    script,
    [
      'say() { echo "mway-initramfs: $*"; }',
      'fail() { echo "FAIL $*"; exit 3; }',
      'stop() { exit 4; }',
      'onfail=poweroff',
      initHelpers(),
      slotChoiceScript({ rootType: guidDiskHex(root), verityType: guidDiskHex(verity) }),
      `choose_slot_on "${disk}" 512 || { echo none; exit 5; }`,
      'echo "slot=$slot root=$roothash onfail=$onfail"',
    ].join('\n'),
  );
  const r = await run('busybox', ['sh', script], { timeout: 60_000, reject: false });
  return { out: r.stdout + r.stderr, code: r.exitCode ?? -1 };
}

async function setup(t: import('ava').ExecutionContext) {
  const dir = await tempDir(t, 'mway-init-slots-');
  const keys = await devKeys(dir);
  const v1 = await makeCoreos(dir, keys, { version: '1.0' });
  const v2 = await makeCoreos(dir, keys, { version: '2.0' });
  const disk = await makeSlotDisk(dir, v1, '1.0');
  return { dir, keys, v1, v2, disk };
}

test('/init slot choice: a disk without slot bits boots a', async (t) => {
  const s = await setup(t);
  const r = await choose(s.dir, s.disk);
  t.is(r.code, 0, r.out);
  t.regex(r.out, new RegExp(`slot=a root=${s.v1.rootHash} onfail=poweroff`));
});

test('/init slot choice: an armed b is booted once (tries 1→0 in both GPT copies), then a again', async (t) => {
  const s = await setup(t);
  const b = await makeBundle(s.dir, s.keys, s.v2, { version: '2.0', rollbackIndex: 1 });
  await installToSlot(s.disk, b.path, await verifyBundle(b.path, { anchors: [s.keys.vendorRoot], at: NOW }), {
    running: 'a',
  });
  const first = await choose(s.dir, s.disk);
  t.is(first.code, 0, first.out);
  t.regex(first.out, /mway-initramfs: slot b \(trial, tries 1→0\)/);
  t.regex(first.out, new RegExp(`slot=b root=${s.v2.rootHash} onfail=reboot`));
  // Our reader checks both CRCs of the primary; sgdisk checks the backup against it.
  const gpt = await readGpt(s.disk);
  t.false(gpt.usedBackup);
  t.deepEqual((await readDiskSlots(s.disk)).b.state, { priority: 2, tries: 0, successful: false });
  const v = await run('sgdisk', ['-v', s.disk], { timeout: 30_000, reject: false });
  t.regex(v.stdout, /No problems found/, v.stdout);
  t.regex(
    (await run('sgdisk', ['-i', '4', s.disk], { timeout: 30_000 })).stdout,
    /Attribute flags: 1002000000000000/,
  );

  const second = await choose(s.dir, s.disk);
  t.is(second.code, 0, second.out);
  t.regex(second.out, /mway-initramfs: slot a\n/);
  t.regex(second.out, new RegExp(`slot=a root=${s.v1.rootHash} onfail=poweroff`));
});

test('/init slot choice: the higher priority wins, a on a tie; nothing bootable stops the boot', async (t) => {
  const s = await setup(t);
  const b = await makeBundle(s.dir, s.keys, s.v2, { version: '2.0', rollbackIndex: 1 });
  await installToSlot(s.disk, b.path, await verifyBundle(b.path, { anchors: [s.keys.vendorRoot], at: NOW }), {
    running: 'a',
  });
  const set = async (slot: 'a' | 'b', st: { priority: number; tries: number; successful: boolean }) => {
    const p = (await readDiskSlots(s.disk))[slot].statePartition;
    writePartitionEntries(s.disk, [{ index: p.index, attributes: encodeSlot(p.attributes, st) }]);
  };
  await set('b', { priority: 1, tries: 0, successful: true });
  await set('a', { priority: 1, tries: 0, successful: true });
  t.regex((await choose(s.dir, s.disk)).out, /slot=a /);
  await set('b', { priority: 3, tries: 0, successful: true });
  t.regex((await choose(s.dir, s.disk)).out, /slot=b .* onfail=poweroff/);
  await set('a', { priority: 0, tries: 0, successful: false });
  await set('b', { priority: 2, tries: 0, successful: false });
  const none = await choose(s.dir, s.disk);
  t.is(none.code, 4, none.out);
  t.regex(
    none.out,
    /MILKYWAY: no bootable slot \(a: priority 0 tries 0 successful 0; b: priority 2 tries 0 successful 0\)/,
  );
});
