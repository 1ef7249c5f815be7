// Writing a verified bundle into the inactive slot of a disk image (update/slot-install.ts):
// only slot B changes, it is verified as written, relabelled, given the GUIDs of its root hash
// and armed for one trial; the running slot stays the fallback. Cross-checked with sgdisk
// (names, GUIDs, attribute bits, both GPT copies) and veritysetup on the written partitions.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BootchainError, pinVendorKey, verifyStage2 } from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import {
  decodeSlot,
  encodeSlot,
  installToSlot,
  readDiskSlots,
  readUpdateState,
  type UpdateError,
  verifyBundle,
  withUpdateLock,
  writeUpdateState,
} from '../../update/index.ts';
import { tempDir } from '../helpers.ts';
import { devKeys, makeBundle, makeCoreos, makeSlotDisk, NOW } from './_slot-disk.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function setup(t: import('ava').ExecutionContext) {
  const dir = await tempDir(t, 'mway-slot-');
  const keys = await devKeys(dir);
  const v1 = await makeCoreos(dir, keys, { version: '1.0' });
  const v2 = await makeCoreos(dir, keys, { version: '2.0' });
  const disk = await makeSlotDisk(dir, v1, '1.0');
  const b = await makeBundle(dir, keys, v2, { version: '2.0', rollbackIndex: 2 });
  const verified = await verifyBundle(b.path, { anchors: [keys.vendorRoot], at: NOW });
  return { dir, keys, v1, v2, disk, bundle: b.path, verified };
}

const sgdiskInfo = async (disk: string, n: number) =>
  (await run('sgdisk', ['-i', String(n), disk], { timeout: 30_000 })).stdout;

test('encodeSlot()/decodeSlot() keep the other attribute bits and refuse out-of-range values', (t) => {
  const ro = 1n << 60n;
  const a = encodeSlot(ro, { priority: 2, tries: 1, successful: false });
  t.is(a, ro | (2n << 48n) | (1n << 52n));
  t.deepEqual(decodeSlot(a), { priority: 2, tries: 1, successful: false });
  t.deepEqual(decodeSlot(encodeSlot(a, { priority: 15, tries: 15, successful: true })), {
    priority: 15,
    tries: 15,
    successful: true,
  });
  const e = t.throws(() => encodeSlot(0n, { priority: 16, tries: 0, successful: false }));
  // One definition of the slot bits: the boot chain's, with its code.
  t.is((e as BootchainError).code, 'E_SLOT_BAD');
});

test('installToSlot() writes only slot B, verifies it, relabels it and arms one trial', async (t) => {
  const s = await setup(t);
  const before = await readDiskSlots(s.disk);
  t.true(before.a.implicit);
  t.deepEqual(before.a.state, { priority: 2, tries: 0, successful: true });
  t.is(before.b.label, null);
  const aBytes = sha(
    await readFile(s.disk).then((d) =>
      d.subarray(Number(before.a.data.firstLba) * 512, Number(before.a.sig.lastLba + 1n) * 512),
    ),
  );

  const r = await installToSlot(s.disk, s.bundle, s.verified, { running: 'a' });
  t.is(r.slot, 'b');
  const after = await readDiskSlots(s.disk);
  t.false(after.a.implicit);
  t.deepEqual(after.a.state, { priority: 1, tries: 0, successful: true });
  t.deepEqual(after.b.state, { priority: 2, tries: 1, successful: false });
  t.is(after.b.label, 'milkyway_2.0');
  t.is(after.b.rootHash, s.v2.rootHash);
  t.is(after.a.rootHash, s.v1.rootHash);
  // Slot A's bytes are untouched.
  const disk = await readFile(s.disk);
  t.is(
    sha(disk.subarray(Number(after.a.data.firstLba) * 512, Number(after.a.sig.lastLba + 1n) * 512)),
    aBytes,
  );

  // sgdisk reads both copies the same way and finds them consistent.
  const info = await sgdiskInfo(s.disk, after.b.data.index);
  t.regex(info, /Partition name: 'milkyway_2\.0'/);
  t.regex(info, new RegExp(`unique GUID: ${after.b.data.uuid}`, 'i'));
  t.regex(info, /Attribute flags: 1012000000000000/);
  t.regex(await sgdiskInfo(s.disk, after.a.data.index), /Attribute flags: 1101000000000000/);
  const v = await run('sgdisk', ['-v', s.disk], { timeout: 30_000, reject: false });
  t.regex(v.stdout, /No problems found/);

  // veritysetup on the partitions as written.
  const part = (p: typeof after.b.data, out: string) =>
    writeFile(out, disk.subarray(Number(p.firstLba) * 512, Number(p.lastLba + 1n) * 512));
  await part(after.b.data, join(s.dir, 'b.erofs'));
  await part(after.b.verity, join(s.dir, 'b.verity'));
  const vs = await run(
    'veritysetup',
    ['verify', join(s.dir, 'b.erofs'), join(s.dir, 'b.verity'), s.v2.rootHash],
    {
      timeout: 60_000,
      reject: false,
    },
  );
  t.is(vs.exitCode, 0, vs.stderr);
});

test('installToSlot() on a boot-chain disk writes the stage 2 onto boot-b and arms the slot bits there', async (t) => {
  const dir = await tempDir(t, 'mway-slot-chain-');
  const keys = await devKeys(dir);
  const v1 = await makeCoreos(dir, keys, { version: '1.0' });
  const v2 = await makeCoreos(dir, keys, { version: '2.0' });
  const disk = await makeSlotDisk(dir, v1, '1.0', { bootChain: keys });
  const b = await makeBundle(dir, keys, v2, { version: '2.0', rollbackIndex: 2 });
  const verified = await verifyBundle(b.path, { anchors: [keys.vendorRoot], at: NOW });
  const before = await readDiskSlots(disk);
  const bootA = before.a.boot;
  const bootB = before.b.boot;
  if (bootA === null || bootB === null) return t.fail('no boot partitions');
  t.false(before.a.implicit);
  t.is(before.a.statePartition.index, bootA.index);
  const aStage2 = sha(
    (await readFile(disk)).subarray(Number(bootA.firstLba) * 512, Number(bootA.lastLba + 1n) * 512),
  );

  await installToSlot(disk, b.path, verified, { running: 'a' });
  const after = await readDiskSlots(disk);
  t.deepEqual(after.a.state, { priority: 1, tries: 0, successful: true });
  t.deepEqual(after.b.state, { priority: 2, tries: 1, successful: false });
  const bytes = await readFile(disk);
  const at = Number(bootB.firstLba) * 512;
  const st = verified.layout.members[3];
  // boot-b holds the bundle's stage 2, which verifies as stage 1 checks it, naming CoreOS 2.0.
  const written = bytes.subarray(at, at + Number(bootB.sizeBytes));
  const pinned = [
    pinVendorKey(keys.vendor.chain[0] as (typeof keys.vendor.chain)[0], { anchors: [keys.vendorRoot] }),
  ];
  const d = verifyStage2(written, {
    pinned,
    rollbackFloor: 2n,
    partitionSize: Number(bootB.sizeBytes),
  }).descriptor;
  t.is(d.rootHash, v2.rootHash);
  t.is(d.version, '2.0');
  t.is(sha(written.subarray(0, st.size)), verified.manifest.stage2.sha256);
  // boot-a (stage 2 of the running slot) is untouched.
  t.is(sha(bytes.subarray(Number(bootA.firstLba) * 512, Number(bootA.lastLba + 1n) * 512)), aStage2);
  // sgdisk: the bits are on the boot partitions (priority 48–51, tries 52–55, successful 56); the
  // CoreOS data partitions keep only read-only (bit 60).
  t.regex(await sgdiskInfo(disk, bootB.index), /Attribute flags: 0012000000000000/);
  t.regex(await sgdiskInfo(disk, bootA.index), /Attribute flags: 0101000000000000/);
  t.regex(await sgdiskInfo(disk, after.b.data.index), /Attribute flags: 1000000000000000/);
  const v = await run('sgdisk', ['-v', disk], { timeout: 30_000, reject: false });
  t.regex(v.stdout, /No problems found/);
});

test('installToSlot() refuses while the running slot is an undecided trial (E_SLOT_RUNNING)', async (t) => {
  const s = await setup(t);
  await installToSlot(s.disk, s.bundle, s.verified, { running: 'a' });
  // Booted into the trial b: a is the last known good one and must not be overwritten.
  const e = await t.throwsAsync(installToSlot(s.disk, s.bundle, s.verified, { running: 'b' }));
  t.is((e as UpdateError).code, 'E_SLOT_RUNNING');
  const slots = await readDiskSlots(s.disk);
  t.is(slots.a.label, 'milkyway_1.0');
});

test('installToSlot() refuses a CoreOS bigger than the slot before touching it (E_BUNDLE_SPACE)', async (t) => {
  const s = await setup(t);
  const big = await makeCoreos(s.dir, s.keys, { version: '3.0', fillerBytes: 9 * 1024 * 1024 });
  const b = await makeBundle(s.dir, s.keys, big, { version: '3.0', rollbackIndex: 3 });
  const verified = await verifyBundle(b.path, { anchors: [s.keys.vendorRoot], at: NOW });
  const before = await readFile(s.disk);
  const e = await t.throwsAsync(installToSlot(s.disk, b.path, verified, { running: 'a' }));
  t.is((e as UpdateError).code, 'E_BUNDLE_SPACE');
  t.true(before.equals(await readFile(s.disk)));
});

test('installToSlot() with a bundle changed after verification fails the written check, slot B left empty', async (t) => {
  const s = await setup(t);
  // The bundle file is swapped between verifyBundle and the copy (a hostile spool).
  const bytes = await readFile(s.bundle);
  const off = s.verified.layout.members[0].offset + 4096 * 3;
  bytes[off] = (bytes[off] as number) ^ 0xff;
  await writeFile(s.bundle, bytes);
  const e = await t.throwsAsync(installToSlot(s.disk, s.bundle, s.verified, { running: 'a' }));
  t.is((e as UpdateError).code, 'E_BUNDLE_VERITY');
  const slots = await readDiskSlots(s.disk);
  t.is(slots.b.label, null);
  t.deepEqual(slots.b.state, { priority: 0, tries: 0, successful: false });
});

test('update state: fresh, round trip, damaged and newer files refused; the lock refuses a second update', async (t) => {
  const dir = await tempDir(t, 'mway-ustate-');
  const p = join(dir, 'update.json');
  t.deepEqual(await readUpdateState(p), { version: 1, rollbackFloor: 0 });
  const st = {
    version: 1 as const,
    rollbackFloor: 4,
    lastRollback: { slot: 'b' as const, version: '2.0', reason: 'gate', at: NOW.toISOString() },
  };
  await writeUpdateState(p, st);
  t.deepEqual(await readUpdateState(p), st);
  await writeFile(p, '{"version":1,"rollbackFloor":-1}');
  t.is(((await t.throwsAsync(readUpdateState(p))) as UpdateError).code, 'E_UPDATE_STATE');
  await writeFile(p, '{not json');
  t.is(((await t.throwsAsync(readUpdateState(p))) as UpdateError).code, 'E_UPDATE_STATE');
  await writeFile(p, '{"version":2,"rollbackFloor":1}');
  t.is(((await t.throwsAsync(readUpdateState(p))) as UpdateError).code, 'E_STATE_VERSION');

  let inner: unknown;
  await withUpdateLock(p, async () => {
    inner = await withUpdateLock(p, async () => 'no').catch((e: unknown) => e);
  });
  t.is((inner as UpdateError).code, 'E_SLOT_BUSY');
  // A lock left by a process that died (kill -9) is stale.
  await writeFile(`${p}.lock`, '999999999\n');
  t.is(await withUpdateLock(p, async () => 'ran'), 'ran');
});
