// QEMU (TCG, ~15-30 s each): a UKI of Debian's kernel + a bare busybox initramfs boots
// under OVMF and powers off; proves kernel package, UKI layout and the runner together.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildInitramfs } from '../../imagebuild/initramfs.ts';
import { runQemu } from '../../imagebuild/qemu-run.ts';
import { run } from '../../common/exec.ts';
import { buildUki, DEFAULT_EFI_STUB, readPeLayout, setPeTimestampAndChecksum } from '../../imagebuild/uki.ts';
import { tempDir } from '../helpers.ts';
import { EPOCH, testKernel, ukiDisk } from './boot-fixtures.ts';

const BARE_INIT =
  '#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho "BOOT-UKI-MARKER $(cat /proc/cmdline)"\n/bin/busybox poweroff -f\n';

test('buildUki() places .osrel .cmdline .initrd .linux after the stub, aligned, and is deterministic', async (t) => {
  const dir = await tempDir(t);
  const k = await testKernel();
  const initrd = await buildInitramfs({ kernel: k, sourceDateEpoch: EPOCH, bare: true, init: BARE_INIT });
  const a = join(dir, 'a.efi');
  const b = join(dir, 'b.efi');
  const r = await buildUki({ vmlinuz: k.vmlinuz, initrd, cmdline: 'console=ttyS0 x=1', out: a });
  await new Promise((res) => setTimeout(res, 1100)); // a different second, in case a timestamp leaks in
  await buildUki({ vmlinuz: k.vmlinuz, initrd, cmdline: 'console=ttyS0 x=1', out: b });
  const ab = await readFile(a);
  t.true(ab.equals(await readFile(b)));
  const layout = readPeLayout(ab);
  const names = layout.sections.map((s) => s.name);
  t.deepEqual(names.slice(-4), ['.osrel', '.cmdline', '.initrd', '.linux']);
  const added = layout.sections.slice(-4);
  const stubEnd = Math.max(...layout.sections.slice(0, -4).map((s) => s.virtualAddress + s.virtualSize));
  let prevEnd = stubEnd;
  for (const s of added) {
    t.is(s.virtualAddress % 4096, 0, s.name);
    t.true(s.virtualAddress >= prevEnd, s.name);
    prevEnd = s.virtualAddress + s.virtualSize;
  }
  t.is(added[2]?.virtualSize, initrd.length);
  t.deepEqual(
    r.sections.map((s) => s.name),
    ['.osrel', '.cmdline', '.initrd', '.linux'],
  );
});

test('setPeTimestampAndChecksum() computes the checksum objcopy writes', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'x.efi');
  await run(
    'objcopy',
    [
      '--add-section',
      `.osrel=${DEFAULT_EFI_STUB}`,
      '--change-section-vma',
      '.osrel=0x40000',
      DEFAULT_EFI_STUB,
      out,
    ],
    {
      timeout: 60_000,
    },
  );
  const b = await readFile(out);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const pe = v.getUint32(0x3c, true);
  const stamp = v.getUint32(pe + 8, true);
  const sum = v.getUint32(pe + 88, true);
  t.not(sum, 0);
  v.setUint32(pe + 88, 0x12345678, true);
  setPeTimestampAndChecksum(b, stamp);
  t.is(v.getUint32(pe + 88, true), sum);
});

test('QEMU: a UKI with a bare busybox initramfs boots under OVMF and powers off', async (t) => {
  t.timeout(480_000);
  const dir = await tempDir(t);
  const k = await testKernel();
  const initrd = await buildInitramfs({ kernel: k, sourceDateEpoch: EPOCH, bare: true, init: BARE_INIT });
  const disk = await ukiDisk(dir, { initrd, cmdline: 'console=ttyS0,115200 panic=-1 mway.test=uki' });
  let seen = '';
  const q = await runQemu({
    disk,
    timeout: 420_000,
    serial: 'none',
    onLine: (l) => {
      if (l.includes('BOOT-UKI-MARKER')) seen = l;
    },
  });
  t.teardown(() => q.kill());
  const r = await q.done;
  t.regex(seen, /BOOT-UKI-MARKER .*mway\.test=uki/, r.tail.slice(-20).join('\n'));
  t.true(r.poweredOff);
  t.false(r.timedOut);
});
