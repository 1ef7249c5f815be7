// How much CPU the machine left idle over a window, from /proc/stat (proc(5): the first "cpu"
// line, USER_HZ ticks summed over all processors). Used to decide whether extra threads can
// help: on a shared machine whose cores are all taken, a worker's start-up and hand-offs cost
// more than the work it takes over (doc/performance.md, "layer").
import { readFileSync } from 'node:fs';

interface CpuTicks {
  idle: number;
  total: number;
  /** Processors /proc/stat sums over (its cpuN lines). */
  cpus: number;
}

function readTicks(): CpuTicks | undefined {
  try {
    const lines = readFileSync('/proc/stat', 'latin1').split('\n');
    const f = (lines[0] ?? '').trim().split(/\s+/);
    const cpus = lines.filter((l) => /^cpu\d/.test(l)).length;
    if (f[0] !== 'cpu') return undefined;
    const n = f.slice(1, 9).map(Number);
    if (n.length < 5 || n.some((x) => !Number.isFinite(x))) return undefined;
    // user nice system idle iowait irq softirq steal: idle and iowait are time a thread could have had.
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    return { idle, total: n.reduce((a, b) => a + b, 0), cpus: Math.max(1, cpus) };
  } catch {
    return undefined;
  }
}

export interface CpuIdleSample {
  /**
   * Processors' worth of idle time since the sample was taken (0 … cores), or undefined when
   * /proc/stat is unreadable or too little time passed to say (under 50 ticks).
   */
  idleCores(): number | undefined;
}

/** Starts measuring; `idleCores()` answers for the time since. */
export function sampleCpuIdle(): CpuIdleSample {
  const start = readTicks();
  return {
    idleCores() {
      const end = readTicks();
      if (start === undefined || end === undefined) return undefined;
      const total = end.total - start.total;
      if (total < 50) return undefined;
      return ((end.idle - start.idle) / total) * end.cpus;
    },
  };
}
