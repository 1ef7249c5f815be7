// The real initramfs /init on a small verity-protected CoreOS disk. QEMU boots (TCG, ~20-40 s
// each): it switches root into the verified erofs; one flipped byte in the root or certificate
// partition stops the boot with the verity message before switch_root; with SELinux on the
// command line, a CoreOS without a policy or with one the kernel refuses stops it too.
import test from 'ava';
import { open } from 'node:fs/promises';
import { zstdDecompressSync } from 'node:zlib';
import { readCpio, readGpt } from '../../formats/index.ts';
import { buildInitramfs } from '../../imagebuild/initramfs.ts';
import { INIT_MARKERS, INIT_POLICY } from '../../imagebuild/initramfs-init.ts';
import { runQemu } from '../../imagebuild/qemu-run.ts';
import { coreosCmdline } from '../../imagebuild/uki.ts';
import { tempDir } from '../helpers.ts';
import { COREOS_MARKER, testCoreos } from './boot-coreos-fixture.ts';
import { EPOCH, testKernel, ukiDisk } from './boot-fixtures.ts';

let initrd: Promise<Uint8Array> | undefined;
const realInitrd = async (): Promise<Uint8Array> => {
  initrd ??= testKernel().then((kernel) => buildInitramfs({ kernel, sourceDateEpoch: EPOCH }));
  return initrd;
};

test('buildInitramfs() holds /init, busybox, veritysetup with its loader, and every listed module; same bytes twice', async (t) => {
  const kernel = await testKernel();
  const a = await realInitrd();
  const b = await buildInitramfs({ kernel, sourceDateEpoch: EPOCH });
  t.true(Buffer.from(a).equals(Buffer.from(b)));
  const members = new Map(readCpio(zstdDecompressSync(a)).map((m) => [m.path, m]));
  for (const p of [
    'init',
    'bin/busybox',
    'usr/sbin/veritysetup',
    'lib64/ld-linux-x86-64.so.2',
    'dev/console',
    'bin/sh',
    'sbin/switch_root',
  ]) {
    t.true(members.has(p), p);
  }
  const init = Buffer.from(members.get('init')?.data ?? new Uint8Array()).toString('utf8');
  t.true(
    init.includes('4f68bce3'.match(/../g)?.reverse().join('') ?? 'x'),
    'DPS root type in GPT byte order',
  );
  const list = Buffer.from(members.get('etc/modules.load')?.data ?? new Uint8Array())
    .toString('utf8')
    .trim()
    .split('\n');
  for (const m of list) t.true(members.has(m.slice(1)), m);
  const names = list.map((m) => m.slice(m.lastIndexOf('/') + 1));
  t.true(names.indexOf('dm-mod.ko') < names.indexOf('dm-verity.ko'));
  t.true(names.indexOf('crc32c_generic.ko') < names.indexOf('erofs.ko'));
  t.true(names.includes('virtio_blk.ko') && names.includes('evdev.ko') && names.includes('vfat.ko'));
});

test('QEMU: /init finds CoreOS by type and root-hash GUIDs, opens it and the certificates with dm-verity and switches root', async (t) => {
  t.timeout(480_000);
  const dir = await tempDir(t);
  const coreos = await testCoreos(dir, 'milkyway_1.0.0', { certs: true });
  const disk = await ukiDisk(dir, {
    initrd: await realInitrd(),
    cmdline: coreosCmdline({ rootHash: coreos.rootHash, extra: [`mway.certs=${coreos.certsRootHash}`] }),
    more: coreos.partitions,
  });
  const lines: string[] = [];
  const q = await runQemu({ disk, timeout: 420_000, serial: 'none', onLine: (l) => lines.push(l) });
  t.teardown(() => q.kill());
  const r = await q.done;
  const log = lines.filter((l) => !l.startsWith('[')).join('\n');
  t.true(
    lines.some((l) => l.startsWith(INIT_MARKERS.switching)),
    log,
  );
  // PID 1 in the new root, and / is the dm-verity device with erofs, read-only.
  t.regex(log, new RegExp(`${COREOS_MARKER} pid=1 root=/dev/mapper/coreos / erofs ro`));
  t.regex(log, /CoreOS milkyway_1\.0\.0 on \/dev\/vda2/);
  // The certificate partition is verified and mounted before switch_root, read-only.
  t.regex(log, /CERTS-MOUNT \/dev\/mapper\/certs \/certs erofs ro,nosuid,nodev,noexec.* ANCHOR test-anchor/);
  t.false(log.includes('MILKYWAY:'));
  t.true(r.poweredOff);
});

test('QEMU: one flipped byte in the CoreOS partition stops the boot with the verity message', async (t) => {
  t.timeout(480_000);
  const dir = await tempDir(t);
  const coreos = await testCoreos(dir);
  const disk = await ukiDisk(dir, {
    initrd: await realInitrd(),
    cmdline: coreosCmdline({ rootHash: coreos.rootHash }),
    more: coreos.partitions,
  });
  // Flip a byte in the middle of the erofs image (inside busybox's data, not the superblock).
  const part = (await readGpt(disk)).partitions.find((p) => p.name === 'milkyway_1.0.0');
  if (part === undefined) return t.fail('no CoreOS partition');
  const at = Number(part.firstLba) * 512 + Math.floor(coreos.dataSize / 2);
  const fh = await open(disk, 'r+');
  const b = new Uint8Array(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] ?? 0) ^ 0x01;
  await fh.write(b, 0, 1, at);
  await fh.close();
  const lines: string[] = [];
  const q = await runQemu({ disk, timeout: 420_000, serial: 'none', onLine: (l) => lines.push(l) });
  t.teardown(() => q.kill());
  const r = await q.done;
  const log = lines.filter((l) => !l.startsWith('[')).join('\n');
  t.true(
    lines.some((l) => l.startsWith(INIT_MARKERS.verityFailed)),
    log,
  );
  t.false(
    lines.some((l) => l.startsWith(INIT_MARKERS.switching)),
    log,
  );
  t.false(log.includes(COREOS_MARKER));
  t.true(r.poweredOff, 'fail closed powers the machine off (mway.onfail default)');
});

test('QEMU: one flipped byte in the certificate partition stops the boot before switch_root', async (t) => {
  t.timeout(480_000);
  const dir = await tempDir(t);
  const coreos = await testCoreos(dir, 'milkyway_1.0.0', { certs: true });
  const disk = await ukiDisk(dir, {
    initrd: await realInitrd(),
    cmdline: coreosCmdline({ rootHash: coreos.rootHash, extra: [`mway.certs=${coreos.certsRootHash}`] }),
    more: coreos.partitions,
  });
  // Flip a bit in the trust anchor's bytes inside the certificate erofs.
  const part = (await readGpt(disk)).partitions.find((p) => p.name === 'certificates');
  if (part === undefined) return t.fail('no certificates partition');
  const fh = await open(disk, 'r+');
  const bytes = Buffer.alloc(Number(part.sizeBytes));
  await fh.read(bytes, 0, bytes.length, Number(part.firstLba) * 512);
  const at = bytes.indexOf('test-anchor');
  t.true(at > 0);
  await fh.write(Buffer.from([(bytes[at] ?? 0) ^ 0x01]), 0, 1, Number(part.firstLba) * 512 + at);
  await fh.close();
  const lines: string[] = [];
  const q = await runQemu({ disk, timeout: 420_000, serial: 'none', onLine: (l) => lines.push(l) });
  t.teardown(() => q.kill());
  const r = await q.done;
  const log = lines.filter((l) => !l.startsWith('[')).join('\n');
  t.true(
    lines.some((l) => l.startsWith(INIT_MARKERS.certsFailed)),
    log,
  );
  t.false(
    lines.some((l) => l.startsWith(INIT_MARKERS.switching)),
    log,
  );
  t.true(r.poweredOff);
});

for (const [what, files, reason] of [
  ['no policy', {}, /CoreOS has no \/etc\/selinux\/milkyway\/policy\.33/],
  [
    'a policy the kernel refuses',
    { [INIT_POLICY.slice(1)]: Buffer.alloc(4096, 'not a policy ') },
    /the kernel refused \/etc\/selinux\/milkyway\/policy\.33 \(4096 bytes\)/,
  ],
] as const)
  test(`QEMU: security=selinux and ${what} in CoreOS stops the boot before switch_root (fail closed)`, async (t) => {
    t.timeout(480_000);
    const dir = await tempDir(t);
    const coreos = await testCoreos(dir, 'milkyway_1.0.0', { files });
    const disk = await ukiDisk(dir, {
      initrd: await realInitrd(),
      cmdline: coreosCmdline({ rootHash: coreos.rootHash, extra: ['security=selinux', 'enforcing=1'] }),
      more: coreos.partitions,
    });
    const lines: string[] = [];
    const q = await runQemu({ disk, timeout: 420_000, serial: 'none', onLine: (l) => lines.push(l) });
    t.teardown(() => q.kill());
    const r = await q.done;
    const log = lines.filter((l) => !l.startsWith('[')).join('\n');
    const failed = lines.find((l) => l.startsWith(INIT_MARKERS.policyFailed)) ?? '';
    t.regex(failed, reason, log);
    t.false(
      lines.some((l) => l.startsWith(INIT_MARKERS.switching) || l.startsWith(INIT_MARKERS.policyLoaded)),
      log,
    );
    t.false(log.includes(COREOS_MARKER));
    t.true(r.poweredOff, 'fail closed powers the machine off');
  });
