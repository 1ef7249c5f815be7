// Each app's root: a read-only overlayfs of its payload over its library layers' payloads
// (in the resolver's order) over the base. On top sits a tiny tmpfs layer holding only the
// mount points the sandbox needs (/data/…, /proc, /dev, /tmp, /run), so a payload need not
// ship them. It is a separate tmpfs because overlayfs refuses a lower layer that lies
// inside another lower layer (the base is usually `/`).
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

const SANDBOX_DIRS = ['proc', 'dev', 'tmp', 'run', 'sys', 'data/secure', 'data/common', 'data/group'];

/** Mounts the tmpfs that holds every app's mount-point layer (once per boot). */
export async function mountSkeletonTmpfs(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const mounts = await import('node:fs/promises').then((f) => f.readFile('/proc/self/mounts', 'utf8'));
  if (mounts.split('\n').some((l) => l.split(' ')[1] === dir)) return;
  await run('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=4m', 'mwl-skeleton', dir], { timeout: 10_000 });
}

/**
 * Mounts `target` as overlay of [skeleton, ...lowers] (first = top). `groups` adds
 * `data/group/<g>` mount points.
 */
export async function mountAppRoot(
  skeletonDir: string,
  app: string,
  lowers: string[],
  groups: string[],
  target: string,
): Promise<void> {
  const skel = join(skeletonDir, app);
  await rm(skel, { recursive: true, force: true });
  for (const d of [...SANDBOX_DIRS, ...groups.map((g) => `data/group/${g}`)]) {
    await mkdir(join(skel, d), { recursive: true, mode: 0o755 });
  }
  await mkdir(target, { recursive: true });
  // overlayfs reads ':' and ',' in paths as separators; our paths never contain them.
  for (const p of [skel, ...lowers]) {
    if (/[:,]/.test(p))
      throw new AgentError('E_LAYER_ACTIVATE', `Cannot use ${p} as an overlay layer: it contains ':' or ','`);
  }
  await run(
    'mount',
    ['-t', 'overlay', '-o', `ro,nodev,nosuid,lowerdir=${[skel, ...lowers].join(':')}`, `mwl-${app}`, target],
    {
      timeout: 30_000,
    },
  );
}

/**
 * Unmounts `target` or throws E_LAYER_UNMOUNT (a process inside it keeps it busy, …): for a
 * runtime remove, which must not go on as if the layer were gone.
 */
export async function unmountOrThrow(target: string, what: string): Promise<void> {
  const mounted = async () =>
    (await import('node:fs/promises').then((f) => f.readFile('/proc/self/mounts', 'utf8')))
      .split('\n')
      .some((l) => l.split(' ')[1] === target);
  if (!(await mounted())) return;
  const r = await run('umount', [target], { timeout: 30_000, reject: false });
  if (r.exitCode !== 0 && (await mounted())) {
    throw new AgentError(
      'E_LAYER_UNMOUNT',
      `Cannot unmount ${what} ${target}: ${r.stderr.trim() || `umount exited ${r.exitCode}`}`,
      {
        path: target,
      },
    );
  }
}

export async function unmountAppRoot(skeletonDir: string, app: string, target: string): Promise<void> {
  await run('umount', [target], { timeout: 30_000, reject: false }).catch(() => {});
  await rm(join(skeletonDir, app), { recursive: true, force: true });
  await rmdir(target).catch(() => {});
}
