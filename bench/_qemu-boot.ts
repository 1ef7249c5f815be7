// One timed QEMU boot for the boot benchmarks (bench/image.ts, bench/_selinux-cost.ts): QEMU
// start to the first console line matching a pattern, the boot's marks on the way (stage 1,
// kernel, initramfs, switch_root, the agent's first line), then the guest is killed.
import { INIT_MARKERS } from '../imagebuild/initramfs-init.ts';
import { runQemu } from '../imagebuild/qemu-run.ts';
import { cpuSecondsNow } from './_measure.ts';

export interface TimedBoot {
  ms: number;
  marks: Record<string, number>;
  /**
   * QEMU's own CPU seconds at `switchRoot`, `agent` and the match (`done`): the guest's work,
   * which another process's load stretches in wall time far more than in CPU time (TCG).
   */
  cpu: Record<string, number>;
  /** The console lines up to the match. */
  lines: string[];
}

/** Milliseconds from QEMU start to the first console line matching `pattern`; the guest is then killed. */
export async function timeTo(
  disk: string,
  pattern: RegExp,
  timeoutMs = 600_000,
  secureBoot = false,
): Promise<TimedBoot> {
  const t0 = performance.now();
  let hit = -1;
  const marks: Record<string, number> = {};
  const cpu: Record<string, number> = {};
  const lines: string[] = [];
  const cpuAt = (mark: string) => {
    if (q.pid !== undefined && cpu[mark] === undefined) cpu[mark] = cpuSecondsNow(q.pid);
  };
  const q = await runQemu({
    disk,
    timeout: timeoutMs,
    serial: 'none',
    snapshot: true,
    secureBoot,
    onLine: (l) => {
      const now = performance.now() - t0;
      if (hit < 0) lines.push(l);
      if (l.includes('mway-stage1: start')) marks.stage1 ??= now;
      if (l.includes('verified: ML-DSA')) marks.verified ??= now;
      if (l.includes('mway-stage1: booting stage 2')) marks.kexec ??= now;
      if (marks.kexec !== undefined && l.includes('Linux version')) marks.kernel2 ??= now;
      if (l.includes('EFI stub:') && marks.kernel === undefined) marks.kernel = now;
      if (l.startsWith(INIT_MARKERS.start)) marks.initramfs = now;
      if (l.startsWith(INIT_MARKERS.policyLoaded)) marks.policy ??= now;
      if (l.startsWith(INIT_MARKERS.switching)) {
        marks.switchRoot = now;
        cpuAt('switchRoot');
      }
      if (marks.agent === undefined && /milkyway-agent(?: info)?: starting/.test(l)) {
        marks.agent = now;
        cpuAt('agent');
      }
      if (hit < 0 && pattern.test(l)) {
        hit = now;
        cpuAt('done');
        q.kill();
      }
    },
  });
  const r = await q.done;
  if (hit < 0)
    throw new Error(`bench: ${pattern} never appeared (last lines: ${r.tail.slice(-5).join(' | ')})`);
  return { ms: hit, marks, cpu, lines };
}

/** The fastest of `rounds` boots. */
export async function best(rounds: number, f: () => Promise<TimedBoot>): Promise<TimedBoot> {
  let b: TimedBoot | undefined;
  for (let i = 0; i < rounds; i++) {
    const r = await f();
    if (b === undefined || r.ms < b.ms) b = r;
  }
  if (b === undefined) throw new Error('bench: no rounds');
  return b;
}

/** `12.3 s`, or `-` for a mark the boot never reached. */
export const seconds = (ms: number | undefined): string =>
  ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`;
