// One cgroup v2 directory per service: the service is started inside it, its limits are
// written when the controller files exist, and it is killed as a whole with cgroup.kill.
// On a hybrid host (v2 without memory/pids/cpu) the limits cannot be applied; that is
// reported per service instead of silently ignored.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A service's limits, in the manifest's names (layers/service.ts: MemoryMax=, TasksMax=, CPUWeight=). */
export interface CgroupLimits {
  memoryMax?: number;
  tasksMax?: number;
  cpuWeight?: number;
}

/** The cgroup v2 file each limit is written to. */
const LIMIT_FILES = [
  ['memoryMax', 'memory.max'],
  ['tasksMax', 'pids.max'],
  ['cpuWeight', 'cpu.weight'],
] as const;

/** The limits `l` sets, as cgroup file and value. */
export function limitFiles(l: CgroupLimits): [file: string, value: number][] {
  return LIMIT_FILES.flatMap(([key, file]) => {
    const value = l[key];
    return value === undefined ? [] : [[file, value] as [string, number]];
  });
}

export interface ServiceCgroup {
  path: string;
  /** Limits the manifest asked for that could not be written (e.g. `memory.max`). */
  notApplied: string[];
}

/** Whether `dir` is a cgroup v2 directory (has cgroup.procs and cgroup.controllers). */
export function isCgroup2(dir: string): boolean {
  return existsSync(join(dir, 'cgroup.procs')) && existsSync(join(dir, 'cgroup.controllers'));
}

/** Enables what controllers the parent offers for its children (best effort). */
export async function prepareCgroupRoot(root: string): Promise<string[]> {
  await mkdir(root, { recursive: true });
  const parent = join(root, '..');
  let available: string[] = [];
  try {
    available = (await readFile(join(parent, 'cgroup.controllers'), 'utf8')).split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
  const wanted = available.filter((c) => c === 'memory' || c === 'pids' || c === 'cpu');
  for (const dir of [parent, root]) {
    for (const c of wanted) {
      try {
        await writeFile(join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch {
        // a controller in use by a process in this cgroup cannot be delegated
      }
    }
  }
  try {
    return (await readFile(join(root, 'cgroup.subtree_control'), 'utf8')).split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

export async function createServiceCgroup(
  root: string,
  name: string,
  limits: CgroupLimits,
): Promise<ServiceCgroup> {
  const path = join(root, name.replaceAll('/', '_'));
  await mkdir(path, { recursive: true });
  const notApplied: string[] = [];
  for (const [file, value] of limitFiles(limits)) {
    try {
      await writeFile(join(path, file), String(value));
    } catch {
      notApplied.push(file);
    }
  }
  return { path, notApplied };
}

export async function cgroupPids(path: string): Promise<number[]> {
  try {
    const text = await readFile(join(path, 'cgroup.procs'), 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((s) => Number(s));
  } catch {
    return [];
  }
}

/** Sends `signal` to every process in the cgroup. */
export async function signalCgroup(path: string, signal: NodeJS.Signals, except?: number): Promise<number> {
  const pids = (await cgroupPids(path)).filter((p) => p !== except);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
  return pids.length;
}

/** SIGKILLs the whole cgroup (cgroup.kill, or each pid on kernels before 5.14). */
export async function killCgroup(path: string): Promise<void> {
  try {
    await writeFile(join(path, 'cgroup.kill'), '1');
  } catch {
    await signalCgroup(path, 'SIGKILL');
  }
}

/** Removes an empty service cgroup; waits (bounded) for the kernel to empty it. */
export async function removeCgroup(path: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(path);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
