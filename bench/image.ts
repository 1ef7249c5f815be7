// `npm run bench -- image`: boot times under QEMU (TCG, OVMF) in one run —
//  1. reference: Debian's kernel + a bare busybox initramfs in a UKI, QEMU start → /init;
//  2. ours: the MilkyWay initramfs (modules, GPT lookup, veritysetup, full verity read,
//     switch_root) into a minimal erofs CoreOS holding Node 24 and its libraries, QEMU start →
//     a line printed from JavaScript by Node as PID 1, with the full read (mway.verity=full,
//     the default) and without (mway.verity=lazy);
//  3. the default image (`mway-image build`, timed cold and warm) or --disk PATH: QEMU start →
//     the first console line matching --ready REGEX (default `boot done:`, the agent's line
//     once its services are started).
// Options: --rounds=N (default 2, best of), --disk=PATH, --ready=REGEX.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { buildInitramfs } from '../imagebuild/initramfs.ts';
import { INIT_MARKERS } from '../imagebuild/initramfs-init.ts';
import { flagValue } from './_flags.ts';
import { runQemu } from '../imagebuild/qemu-run.ts';
import { coreosCmdline } from '../imagebuild/uki.ts';
import { COREOS_MARKER, testCoreos } from '../test/imagebuild/boot-coreos-fixture.ts';
import { EPOCH, testKernel, ukiDisk } from '../test/imagebuild/boot-fixtures.ts';

/** Milliseconds from QEMU start to the first console line matching `pattern`; the guest is then killed. */
async function timeTo(
  disk: string,
  pattern: RegExp,
  timeoutMs = 300_000,
): Promise<{ ms: number; marks: Record<string, number> }> {
  const t0 = performance.now();
  let hit = -1;
  const marks: Record<string, number> = {};
  const q = await runQemu({
    disk,
    timeout: timeoutMs,
    serial: 'none',
    snapshot: true,
    onLine: (l) => {
      const now = performance.now() - t0;
      if (l.includes('EFI stub:') && marks.kernel === undefined) marks.kernel = now;
      if (l.startsWith(INIT_MARKERS.start)) marks.initramfs = now;
      if (l.startsWith(INIT_MARKERS.switching)) marks.switchRoot = now;
      if (marks.agent === undefined && l.includes('milkyway-agent info: starting')) marks.agent = now;
      if (hit < 0 && pattern.test(l)) {
        hit = now;
        q.kill();
      }
    },
  });
  const r = await q.done;
  if (hit < 0)
    throw new Error(`bench: ${pattern} never appeared (last lines: ${r.tail.slice(-5).join(' | ')})`);
  return { ms: hit, marks };
}

async function best(rounds: number, f: () => Promise<{ ms: number; marks: Record<string, number> }>) {
  let b: { ms: number; marks: Record<string, number> } | undefined;
  for (let i = 0; i < rounds; i++) {
    const r = await f();
    if (b === undefined || r.ms < b.ms) b = r;
  }
  if (b === undefined) throw new Error('bench: no rounds');
  return b;
}

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

const s = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

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
      const img = await best(rounds, () => timeTo(disk, ready));
      console.log(
        `image ${disk}: QEMU start → ${ready}: ${s(img.ms)} (switch_root ${s(img.marks.switchRoot)}, agent's first line ${s(img.marks.agent)})`,
      );
      console.log(`ratio (image agent ready / reference): ${(img.ms / bare.ms).toFixed(2)}x`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
