// What PID 1 of a real MilkyWayLinux mounts before anything else: the API filesystems and
// a pure cgroup2 hierarchy (so memory.max, pids.max and cpu.weight exist for services).
// In namespace mode only /proc is ours (unshare --mount-proc) and nothing here runs.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { run } from '../../common/index.ts';
import type { MountEntry } from './agent-config.ts';
import { AgentError } from './agent-error.ts';
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

/** `/dev/…` as is; `PARTLABEL=x` by the GPT name the kernel reports (no udev needed). */
export async function resolveSource(source: string, sysBlock = '/sys/class/block'): Promise<string> {
  if (!source.startsWith('PARTLABEL=')) return source;
  const label = source.slice('PARTLABEL='.length);
  const { readdir } = await import('node:fs/promises');
  for (const dev of (await readdir(sysBlock).catch(() => [] as string[])).sort()) {
    try {
      const uevent = await readFile(`${sysBlock}/${dev}/uevent`, 'utf8');
      if (uevent.split('\n').includes(`PARTNAME=${label}`)) return `/dev/${dev}`;
    } catch {
      // not a partition
    }
  }
  throw new AgentError('E_MOUNT', `No partition labelled ${label}`, { path: source });
}

/**
 * Mounts the config's partitions in order (inside `root`); returns what got mounted. With
 * `selinux`, an entry's `context` is added as `context=` (without SELinux the kernel would
 * refuse the option).
 */
export async function mountPartitions(
  entries: readonly MountEntry[],
  path: (p: string) => string,
  log: LogFn,
  selinux = false,
): Promise<string[]> {
  const done: string[] = [];
  for (const m of entries) {
    const target = path(m.target);
    try {
      const dev = await resolveSource(m.source);
      await mkdir(target, { recursive: true });
      if (await mounted(target)) continue;
      const options = selinux && m.context !== undefined ? `${m.options},context="${m.context}"` : m.options;
      await run('mount', ['-t', m.type, '-o', options, dev, target], { timeout: 60_000 });
      done.push(target);
      log('info', `mounted ${m.source} (${dev}) on ${m.target}`);
    } catch (e) {
      log('error', `cannot mount ${m.source} on ${m.target}: ${(e as Error).message}`);
    }
  }
  return done;
}

/** Unmounts in reverse order; a busy filesystem is remounted read-only instead. */
export async function unmountPartitions(targets: readonly string[], log: LogFn): Promise<void> {
  for (const target of [...targets].reverse()) {
    const r = await run('umount', [target], { timeout: 30_000, reject: false }).catch(() => ({
      exitCode: 1,
    }));
    if (r.exitCode === 0) continue;
    const ro = await run('mount', ['-o', 'remount,ro', target], { timeout: 30_000, reject: false }).catch(
      () => ({
        exitCode: 1,
      }),
    );
    log(
      ro.exitCode === 0 ? 'warn' : 'error',
      `${target} busy: ${ro.exitCode === 0 ? 'remounted read-only' : 'left mounted'}`,
    );
  }
}
