// Slot selection (ChromeOS GPT bits) in TypeScript and in C on the same vectors, and the GPT
// attribute writer on a real disk image, cross-checked with sgdisk (gdisk) and with the C
// stage 1 writing tries on a disk file.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BOOT_PARTITION_TYPE,
  buildVerifier,
  decodeSlot,
  encodeSlot,
  planBoot,
  readSlots,
  type SlotState,
  type SlotStep,
  writeSlot,
} from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import { checkGptRedundancy, DPS, writeGpt } from '../../formats/index.ts';
import { tempDir } from '../helpers.ts';

interface Vector {
  a: [number, number, number];
  b: [number, number, number] | null;
  ok: [number, number];
  steps: string;
}
const vectors = (
  JSON.parse(await readFile(join(import.meta.dirname, 'slot-vectors.json'), 'utf8')) as { vectors: Vector[] }
).vectors;

const st = (v: [number, number, number]): SlotState => ({
  priority: v[0],
  tries: v[1],
  successful: v[2] === 1,
});
const fmt = (steps: SlotStep[]): string =>
  steps
    .map((s) =>
      s.op === 'write'
        ? `W ${s.slot} ${s.state.priority} ${s.state.tries} ${s.state.successful ? 1 : 0}`
        : s.op === 'verify'
          ? `V ${s.slot} ${s.ok ? 1 : 0}`
          : s.op === 'boot'
            ? `B ${s.slot} ${s.trial ? 1 : 0}`
            : 'N',
    )
    .join(' ');

test('planBoot() and the C stage 1 follow every shared vector', async (t) => {
  const bin = await buildVerifier();
  for (const v of vectors) {
    const ts = fmt(
      planBoot(
        { a: st(v.a), ...(v.b === null ? {} : { b: st(v.b) }) },
        { a: v.ok[0] === 1, b: v.ok[1] === 1 },
      ),
    );
    t.is(ts, v.steps, `ts ${JSON.stringify(v)}`);
    const b = v.b === null ? ['0', '-', '0'] : v.b.map(String);
    const c = await run(bin, ['plan', ...v.a.map(String), ...b, ...v.ok.map(String)], { timeout: 30_000 });
    t.is(c.stdout.trim().replace(/\s+/g, ' '), v.steps, `c ${JSON.stringify(v)}`);
  }
});

test('encodeSlot() keeps other attribute bits and round-trips; out of range is E_SLOT_BAD', (t) => {
  const other = (1n << 60n) | 5n;
  const a = encodeSlot(other, { priority: 15, tries: 7, successful: true });
  t.deepEqual(decodeSlot(a), { priority: 15, tries: 7, successful: true });
  t.is(a & ((1n << 60n) | 5n), other);
  t.throws(() => encodeSlot(0n, { priority: 16, tries: 0, successful: false }), { code: 'E_SLOT_BAD' });
});

async function slotDisk(dir: string): Promise<string> {
  const disk = join(dir, 'disk.img');
  await writeGpt(disk, {
    sizeBytes: 64 << 20,
    partitions: [
      { name: 'esp', type: DPS.esp, sizeBytes: 8 << 20 },
      {
        name: 'boot-a',
        type: BOOT_PARTITION_TYPE,
        sizeBytes: 8 << 20,
        attributes: { other: encodeSlot(0n, { priority: 1, tries: 0, successful: true }) },
      },
      {
        name: 'boot-b',
        type: BOOT_PARTITION_TYPE,
        sizeBytes: 8 << 20,
        attributes: { other: encodeSlot(0n, { priority: 2, tries: 3, successful: false }) },
      },
    ],
  });
  return disk;
}

test('writeSlot() rewrites both GPT copies with good CRCs; sgdisk reads the new bits', async (t) => {
  const dir = await tempDir(t);
  const disk = await slotDisk(dir);
  await writeSlot(disk, BOOT_PARTITION_TYPE, 'b', { priority: 2, tries: 2, successful: false });
  const s = await readSlots(disk, BOOT_PARTITION_TYPE);
  t.deepEqual(
    { ...s.b, partition: undefined },
    { priority: 2, tries: 2, successful: false, partition: undefined },
  );
  const copies = checkGptRedundancy(disk);
  t.is(copies.primary, undefined);
  t.is(copies.backup, undefined);
  const v = await run('sgdisk', ['-v', disk], { timeout: 30_000 });
  t.regex(v.stdout, /No problems found/);
  const i = await run('sgdisk', ['-i', '3', disk], { timeout: 30_000 });
  // priority 2 (bits 48–51), tries 2 (52–55): 0x0022000000000000
  t.regex(i.stdout, /Attribute flags: 0022000000000000/);
});

test('the C stage 1 decrements a trial slot’s tries on a disk file and marks a failed slot priority 0 (both copies, sgdisk agrees)', async (t) => {
  const { chainFixture } = await import('./_chain-fixture.ts');
  const f = await chainFixture();
  const dir = await tempDir(t);
  const disk = await slotDisk(dir);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'cfg'), f.config);
  // boot-b (priority 2, trial) holds garbage: tries 3 → 2 written, then refused → priority 0; boot-a is empty → refused too.
  const r = await run(await buildVerifier(), ['boot', disk, join(dir, 'cfg'), '--no-exec', dir], {
    timeout: 60_000,
    reject: false,
  });
  t.is(r.exitCode, 1);
  t.regex(r.stdout, /slot b: priority 2, tries 3, successful 0/);
  t.regex(r.stdout, /MILKYWAY: stage 2 slot b refused: E_DESC_MAGIC/);
  t.regex(r.stdout, /MILKYWAY: no bootable stage 2 slot: E_SLOT_NONE/);
  const s = await readSlots(disk, BOOT_PARTITION_TYPE);
  t.deepEqual([s.a?.priority, s.b?.priority, s.b?.tries], [0, 0, 2]);
  t.regex((await run('sgdisk', ['-v', disk], { timeout: 30_000 })).stdout, /No problems found/);
});

test('the C stage 1 boots a good slot with --no-exec: writes the verified kernel, initramfs and the final command line', async (t) => {
  const { chainFixture, CERTS_HASH } = await import('./_chain-fixture.ts');
  const f = await chainFixture();
  const dir = await tempDir(t);
  const disk = await slotDisk(dir);
  const { readGpt } = await import('../../formats/index.ts');
  const a = (await readGpt(disk)).partitions.find((p) => p.name === 'boot-a');
  if (a === undefined) return t.fail();
  const { open, writeFile } = await import('node:fs/promises');
  const fh = await open(disk, 'r+');
  await fh.write(f.image, 0, f.image.length, Number(a.firstLba) * 512);
  await fh.close();
  await writeSlot(disk, BOOT_PARTITION_TYPE, 'b', { priority: 0, tries: 0, successful: false });
  await writeFile(join(dir, 'cfg'), f.config);
  const r = await run(await buildVerifier(), ['boot', disk, join(dir, 'cfg'), '--no-exec', dir], {
    timeout: 60_000,
  });
  t.regex(r.stdout, /mway-stage1: booting stage 2 from slot a:/);
  t.deepEqual(new Uint8Array(await readFile(join(dir, 'kernel'))), f.input.kernel);
  t.deepEqual(new Uint8Array(await readFile(join(dir, 'initrd'))), f.input.initrd);
  t.is(
    await readFile(join(dir, 'cmdline'), 'utf8'),
    `${f.input.cmdline} mway.certs=${CERTS_HASH} mway.slot=a`,
  );
});
