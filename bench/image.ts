// `npm run bench -- image`: boot times under QEMU (TCG, OVMF) in one run —
//  1. reference: Debian's kernel + a bare busybox initramfs in a UKI, QEMU start → /init;
//  2. ours: the MilkyWay initramfs (modules, GPT lookup, veritysetup, full verity read,
//     switch_root) into a minimal erofs CoreOS holding Node 24 and its libraries, QEMU start →
//     a line printed from JavaScript by Node as PID 1, with the full read (mway.verity=full,
//     the default) and without (mway.verity=lazy);
//  3. the default image (`mway-image build`, timed cold and warm) or --disk PATH: QEMU start →
//     the first console line matching --ready REGEX (default `boot done:`, the agent's line
//     once its services are started).
//  4. the default image built with `selinux: enforcing` and `off`, booted in turns: the cost of
//     enforcing to `boot done:` (bench/_selinux-cost.ts; not with --disk).
// Options: --rounds=N (default 2, best of), --disk=PATH, --ready=REGEX, --boots=N (4.'s boots of
// each mode, default 2).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { buildInitramfs } from '../imagebuild/initramfs.ts';
import { flagValue, intFlag } from './_flags.ts';
import { best, seconds, timeTo } from './_qemu-boot.ts';
import { selinuxCost } from './_selinux-cost.ts';
import { DEFAULT_SPEC } from '../imagebuild/image-spec.ts';
import { coreosCmdline } from '../imagebuild/uki.ts';
import { COREOS_MARKER, testCoreos } from '../test/imagebuild/boot-coreos-fixture.ts';
import { EPOCH, testKernel, ukiDisk } from '../test/imagebuild/boot-fixtures.ts';

const CLI = join(import.meta.dirname, '..', 'imagebuild', 'bin', 'mway-image.ts');

async function hasBuildCommand(): Promise<boolean> {
  const r = await runTool(process.execPath, [CLI, '--help'], { timeout: 60_000, reject: false });
  return /\bbuild\b/.test(r.stdout + r.stderr);
}

async function timeBuild(out: string): Promise<number> {
  const t0 = performance.now();
  await runTool(process.execPath, [CLI, 'build', '-o', out], { timeout: 1_200_000, env: { NO_COLOR: '1' } });
  return performance.now() - t0;
}

/** A copy of `disk` whose ESP holds one UKI of slot a's stage 2 (the boot before the chain). */
async function oneUkiDisk(disk: string, dir: string): Promise<string> {
  const { mkdir, open, readFile } = await import('node:fs/promises');
  const { readGpt, makeVfat } = await import('../formats/index.ts');
  const { decodeStage1Config, verifyStage2 } = await import('../bootchain/index.ts');
  const { readStage1 } = await import('../imagebuild/chain-read.ts');
  const { readRange } = await import('../imagebuild/disk-read.ts');
  const { buildUki } = await import('../imagebuild/uki.ts');
  await mkdir(join(dir, 'esp', 'EFI', 'BOOT'), { recursive: true });
  const out = join(dir, 'disk.img');
  await runTool('cp', ['--sparse=always', disk, out], { timeout: 600_000 });
  const parts = (await readGpt(out)).partitions;
  const esp = parts.find((p) => p.name === 'esp');
  const a = parts.find((p) => p.name === 'boot-a');
  if (esp === undefined || a === undefined) throw new Error('bench: no esp / boot-a');
  const s1 = await readStage1(out, esp, dir);
  if (s1?.config == null) throw new Error('bench: no stage-1 config');
  const cfg = decodeStage1Config(s1.config);
  const v = verifyStage2(readRange(out, Number(a.firstLba) * 512, Number(a.sizeBytes)), {
    pinned: cfg.keys,
    rollbackFloor: 0n,
  });
  await import('node:fs/promises').then((f) => f.writeFile(join(dir, 'vmlinuz'), v.kernel));
  await buildUki({
    vmlinuz: join(dir, 'vmlinuz'),
    initrd: v.initrd,
    cmdline: `${v.descriptor.cmdline} mway.certs=${cfg.certsRootHash}`,
    out: join(dir, 'esp', 'EFI', 'BOOT', 'BOOTX64.EFI'),
  });
  await makeVfat(join(dir, 'esp'), join(dir, 'esp.img'), { sourceDateEpoch: 0, size: Number(esp.sizeBytes) });
  const fh = await open(out, 'r+');
  const img = await readFile(join(dir, 'esp.img'));
  await fh.write(img, 0, img.length, Number(esp.firstLba) * 512);
  await fh.close();
  return out;
}

const s = seconds;

export async function run(argv: string[]): Promise<void> {
  const rounds = Number(flagValue(argv, 'rounds') ?? 2);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-image-'));
  try {
    const kernel = await testKernel();
    const bareDir = join(dir, 'bare');
    const coreDir = join(dir, 'coreos');
    const lazyDir = join(dir, 'lazy');
    for (const d of [bareDir, coreDir, lazyDir]) await import('node:fs/promises').then((fs) => fs.mkdir(d));
    const bareInit = '#!/bin/sh\necho BENCH-BARE-INIT\n/bin/busybox poweroff -f\n';
    const bareDisk = await ukiDisk(bareDir, {
      initrd: await buildInitramfs({ kernel, sourceDateEpoch: EPOCH, bare: true, init: bareInit }),
      cmdline: 'console=ttyS0,115200 panic=-1',
    });
    const initrd = await buildInitramfs({ kernel, sourceDateEpoch: EPOCH });
    const coreos = await testCoreos(coreDir, 'milkyway_1.0.0', { node: true });
    const coreMiB = coreos.dataSize / (1 << 20);
    const sizeOf = (n: number) => Math.ceil(n / (1 << 20)) * (1 << 20);
    const diskSize = sizeOf(coreos.partitions.reduce((a, p) => a + p.sizeBytes, 0) + (48 << 20));
    const fullDisk = await ukiDisk(coreDir, {
      initrd,
      cmdline: coreosCmdline({ rootHash: coreos.rootHash }),
      more: coreos.partitions,
      sizeBytes: diskSize,
    });
    const lazyDisk = await ukiDisk(lazyDir, {
      initrd,
      cmdline: coreosCmdline({ rootHash: coreos.rootHash, extra: ['mway.verity=lazy'] }),
      more: coreos.partitions,
      sizeBytes: diskSize,
    });

    const bare = await best(rounds, () => timeTo(bareDisk, /BENCH-BARE-INIT/));
    const full = await best(rounds, () => timeTo(fullDisk, new RegExp(COREOS_MARKER)));
    const lazy = await best(rounds, () => timeTo(lazyDisk, new RegExp(COREOS_MARKER)));
    console.log(`QEMU ${'7.2'} TCG, OVMF, 1 vCPU, 1 GiB; best of ${rounds}; times from QEMU start`);
    console.log(
      `reference: bare kernel + busybox initramfs → /init:            ${s(bare.ms)} (kernel at ${s(bare.marks.kernel)})`,
    );
    console.log(
      `ours: MilkyWay initramfs → Node 24 as CoreOS PID 1 (${coreMiB.toFixed(0)} MiB erofs), full read: ${s(full.ms)} ` +
        `(kernel ${s(full.marks.kernel)}, /init ${s(full.marks.initramfs)}, switch_root ${s(full.marks.switchRoot)})`,
    );
    console.log(
      `ours: same, mway.verity=lazy (no full read):                 ${s(lazy.ms)} (switch_root ${s(lazy.marks.switchRoot)})`,
    );
    console.log(
      `ratio (ours full / reference): ${(full.ms / bare.ms).toFixed(2)}x; lazy: ${(lazy.ms / bare.ms).toFixed(2)}x`,
    );
    console.log(
      `full verity read: ${s(full.ms - lazy.ms)} for ${coreMiB.toFixed(0)} MiB (switch_root full ${s(full.marks.switchRoot)} vs lazy ${s(lazy.marks.switchRoot)})`,
    );

    // The default image (examples/default via `mway-image build`), built twice: the second
    // build is the warm figure (kernel .deb, unpacked tree and npm tree cached).
    let disk = flagValue(argv, 'disk');
    if (disk === undefined && (await hasBuildCommand())) {
      const out = join(dir, 'image');
      const cold = await timeBuild(out);
      const warm = await timeBuild(out);
      console.log(`mway-image build (default image): first ${s(cold)}, warm ${s(warm)}`);
      disk = join(out, 'disk.img');
    }
    if (disk !== undefined) {
      const ready = new RegExp(flagValue(argv, 'ready') ?? 'boot done:');
      // The same disk booted the way it was before the chain: one UKI on the ESP holding stage
      // 2's kernel, initramfs and command line (plus the certificates' hash stage 1 would add).
      const uki = await oneUkiDisk(disk, join(dir, 'uki'));
      const chainRun = await best(rounds, () => timeTo(disk, ready));
      const ukiRun = await best(rounds, () => timeTo(uki, ready));
      console.log(
        `chain (stage 1 → ML-DSA → kexec → stage 2), Secure Boot off: ${s(chainRun.ms)} (stage 1 /init ${s(chainRun.marks.stage1)}, verified ${s(chainRun.marks.verified)}, kexec ${s(chainRun.marks.kexec)}, stage-2 kernel ${s(chainRun.marks.kernel2)}, switch_root ${s(chainRun.marks.switchRoot)})`,
      );
      console.log(
        `previous one-UKI boot of the same CoreOS: ${s(ukiRun.ms)} (switch_root ${s(ukiRun.marks.switchRoot)})`,
      );
      console.log(
        `ratio (chain / one UKI): ${(chainRun.ms / ukiRun.ms).toFixed(2)}x; chain / bare reference: ${(chainRun.ms / bare.ms).toFixed(2)}x`,
      );
      const img = chainRun;
      console.log(
        `image ${disk}: QEMU start → ${ready}: ${s(img.ms)} (switch_root ${s(img.marks.switchRoot)}, agent's first line ${s(img.marks.agent)})`,
      );
      console.log(`ratio (image agent ready / reference): ${(img.ms / bare.ms).toFixed(2)}x`);
    }
    // 4. The default image built `selinux: enforcing` (its default) and `off`, booted in turns.
    if (flagValue(argv, 'disk') === undefined) {
      const spec = JSON.parse(await readFile(DEFAULT_SPEC, 'utf8')) as Record<string, unknown>;
      await selinuxCost({
        label: 'the default image',
        spec,
        base: dirname(DEFAULT_SPEC),
        dir: join(dir, 'selinux'),
        rounds: intFlag(argv, 'boots', 2),
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
