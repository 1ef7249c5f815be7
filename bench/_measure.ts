// What the benchmarks measure with, defined once: order statistics and the CPU time the kernel
// accounts to a process (/proc/PID/stat; the fields after the command name's closing
// parenthesis are fixed, the name itself may hold spaces).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** The middle value (the upper one of an even count). */
export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** The `p`th percentile of an ascending list (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Clock ticks per second of /proc's times (USER_HZ, 100 on every Linux the project runs on). */
const USER_HZ = 100;

async function statFields(pid: number | 'self'): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of process `pid`, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const t = await cpuTimes(pid);
  return t.user + t.sys;
}

/** utime and stime of process `pid` apart (in the program, in the kernel for it), in seconds. */
export async function cpuTimes(pid: number): Promise<{ user: number; sys: number }> {
  const f = await statFields(pid);
  return { user: Number(f[11]) / USER_HZ, sys: Number(f[12]) / USER_HZ };
}

/** CPU time (user + system) this process spends in `f`, in µs. */
export function cpuUsOf(f: () => void): number {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

/** CPU seconds of every child this process has reaped so far (cutime + cstime). */
export async function reapedChildrenCpu(): Promise<number> {
  const f = await statFields('self');
  return (Number(f[13]) + Number(f[14])) / USER_HZ;
}

/** utime + stime of process `pid`, in seconds, read now (from a callback that cannot wait). */
export function cpuSecondsNow(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / USER_HZ;
}
