// The cost of SELinux enforcing (issue 14), for bench/image.ts and bench/agent.ts: one image
// spec built twice, `selinux: enforcing` and `selinux: off`, from the same keys, and booted in
// turns (off, enforcing, off, …) in the same run under QEMU (TCG, OVMF). Each boot is timed
// from QEMU start to the agent's `boot done:` (every service started and ready), with the
// switch_root and the agent's first line on the way; the agent's share (first line → boot
// done) is where labelling, context= mounts and exec labels cost. A boot whose services
// failed, whose mode is not the one asked for, or with an AVC denial on its console, measures
// nothing, and stops the bench.
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../imagebuild/build-image.ts';
import { validateImageSpec } from '../imagebuild/image-spec.ts';
import { INIT_MARKERS } from '../imagebuild/initramfs-init.ts';
import { median } from './_measure.ts';
import { seconds, type TimedBoot, timeTo } from './_qemu-boot.ts';

const MODES = ['off', 'enforcing'] as const;
type Mode = (typeof MODES)[number];

export interface SelinuxCostOptions {
  /** What is booted, for the printed lines (`the default image`, `20 layers × 2 services`). */
  label: string;
  /** The image spec's JSON; `selinux` is set for each build. */
  spec: Record<string, unknown>;
  /** Where the spec's relative paths start. */
  base: string;
  /** A scratch folder (two image builds). */
  dir: string;
  /** Boots of each mode (medians). */
  rounds: number;
  /** How many services `boot done:` must report, when known. */
  services?: number;
}

interface Booted extends TimedBoot {
  bootDone: string;
}

/** Checks the boot is what it claims to measure; returns it with its `boot done:` text. */
function check(mode: Mode, b: TimedBoot, services: number | undefined): Booted {
  const done = b.lines.find((l) => /milkyway-agent(?: info)?: boot done:/.test(l)) ?? '';
  const bootDone = done.slice(done.indexOf('boot done:'));
  const m = /boot done: (\d+) services \((\d+) failed/.exec(bootDone);
  if (m === null || m[2] !== '0' || (services !== undefined && Number(m[1]) !== services))
    throw new Error(`bench: ${mode} boot: ${bootDone || 'no boot done line'}`);
  const loaded = b.lines.find((l) => l.startsWith(INIT_MARKERS.policyLoaded));
  if (mode === 'enforcing' ? !/enforce=1/.test(loaded ?? '') : loaded !== undefined)
    throw new Error(`bench: ${mode} boot: policy line ${JSON.stringify(loaded ?? null)}`);
  const avc = b.lines.filter((l) => /avc: +denied/.test(l));
  if (avc.length > 0) throw new Error(`bench: ${mode} boot: ${avc.length} AVC denials:\n${avc.join('\n')}`);
  return { ...b, bootDone };
}

export async function selinuxCost(o: SelinuxCostOptions): Promise<void> {
  const disks = {} as Record<Mode, string>;
  const keys = join(o.dir, MODES[0], 'keys');
  for (const mode of MODES) {
    const outDir = join(o.dir, mode);
    await mkdir(outDir, { recursive: true });
    const spec = validateImageSpec({ ...o.spec, selinux: mode }, { base: o.base });
    // The second build reuses the first one's generated keys: the disks differ in the mode only.
    const r = await buildImage({
      spec,
      outDir,
      sourceDateEpoch: 1_700_000_000,
      ...(mode === MODES[0] ? {} : { keysDir: keys }),
    });
    disks[mode] = r.disk;
  }
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(1))
      .join(' ');
  const loadBefore = load();
  const runs: Record<Mode, Booted[]> = { off: [], enforcing: [] };
  for (let i = 0; i < o.rounds; i++)
    for (const mode of MODES) {
      const b = await timeTo(disks[mode], /milkyway-agent(?: info)?: boot done:/);
      runs[mode].push(check(mode, b, o.services));
    }
  // Medians of each mode's boots; wall time from QEMU start, and QEMU's CPU time, which the
  // machine's other load moves far less.
  const stats = (mode: Mode) => {
    const bs = runs[mode];
    const m = (f: (b: Booted) => number | undefined): number | undefined => {
      const xs = bs.map(f).filter((x): x is number => x !== undefined);
      return xs.length === bs.length ? median(xs) : undefined;
    };
    return {
      wall: m((b) => b.ms),
      switchRoot: m((b) => b.marks.switchRoot),
      agentWall: m((b) => (b.marks.agent === undefined ? undefined : b.ms - b.marks.agent)),
      cpu: m((b) => b.cpu.done),
      agentCpu: m((b) =>
        b.cpu.done === undefined || b.cpu.agent === undefined ? undefined : b.cpu.done - b.cpu.agent,
      ),
      bootDone: bs[0]?.bootDone ?? '',
      every: bs.map((b) => `${seconds(b.ms)} / ${b.cpu.done?.toFixed(1) ?? '-'} s CPU`).join(', '),
    };
  };
  const off = stats('off');
  const enf = stats('enforcing');
  console.log(
    `SELinux enforcing against off, ${o.label}: QEMU TCG, ${o.rounds} boot(s) of each, in turns, medians; load average ${loadBefore} before the boots, ${load()} after; AVC denials on the console: 0 in every boot`,
  );
  const cpuS = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(1)} s`);
  for (const [mode, b] of [
    ['off', off],
    ['enforcing', enf],
  ] as const)
    console.log(
      `  ${mode.padEnd(9)} QEMU start → ${b.bootDone}: ${seconds(b.wall)}, QEMU CPU ${cpuS(b.cpu)} (switch_root ${seconds(b.switchRoot)}; the agent's share, its first line → boot done: ${seconds(b.agentWall)}, CPU ${cpuS(b.agentCpu)}); each boot: ${b.every}`,
    );
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`;
  console.log(
    `  enforcing / off: boot done ${ratio(enf.wall, off.wall)} wall, ${ratio(enf.cpu, off.cpu)} CPU; the agent's share ${ratio(enf.agentWall, off.agentWall)} wall, ${ratio(enf.agentCpu, off.agentCpu)} CPU; switch_root (kernel, initramfs, its policy load) ${ratio(enf.switchRoot, off.switchRoot)} wall`,
  );
}
