// What PID 1 of a real MilkyWayLinux mounts before anything else: the API filesystems and
// a pure cgroup2 hierarchy (so memory.max, pids.max and cpu.weight exist for services).
// In namespace mode only /proc is ours (unshare --mount-proc) and nothing here runs.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { run } from '../common/exec.ts';
import type { LogFn } from './agent-log.ts';

const API_MOUNTS: [type: string, source: string, target: string, options: string][] = [
  ['proc', 'proc', '/proc', 'nosuid,nodev,noexec'],
  ['sysfs', 'sysfs', '/sys', 'nosuid,nodev,noexec'],
  ['devtmpfs', 'devtmpfs', '/dev', 'nosuid,mode=0755'],
  ['devpts', 'devpts', '/dev/pts', 'nosuid,noexec,gid=5,mode=0620,ptmxmode=0666'],
  ['tmpfs', 'tmpfs', '/dev/shm', 'nosuid,nodev,mode=1777'],
  ['tmpfs', 'tmpfs', '/run', 'nosuid,nodev,mode=0755'],
  ['cgroup2', 'cgroup2', '/sys/fs/cgroup', 'nosuid,nodev,noexec,nsdelegate'],
  ['securityfs', 'securityfs', '/sys/kernel/security', 'nosuid,nodev,noexec'],
];

async function mounted(target: string): Promise<boolean> {
  try {
    const text = await readFile('/proc/self/mounts', 'utf8');
    return text.split('\n').some((l) => l.split(' ')[1] === target);
  } catch {
    return false;
  }
}

/** Mounts what is missing; a failure is logged and the boot goes on (the console stays). */
export async function mountApiFilesystems(log: LogFn): Promise<void> {
  for (const [type, source, target, options] of API_MOUNTS) {
    if (await mounted(target)) continue;
    if (type === 'securityfs' && !existsSync('/sys/kernel/security')) continue;
    try {
      await mkdir(target, { recursive: true });
      await run('mount', ['-t', type, '-o', options, source, target], { timeout: 10_000 });
    } catch (e) {
      log('warn', `cannot mount ${type} on ${target}: ${(e as Error).message}`);
    }
  }
}
