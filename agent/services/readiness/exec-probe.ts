// Readiness `exec`: a probe command exits 0, run inside the service's sandbox namespaces with
// the service's uid, gid, groups and capabilities.
//
// It is entered by mway-sandbox-exec (sandbox-exec.c), a static CoreOS binary the agent runs
// from outside the root: it enters the namespaces, chroots, drops to the service's credentials
// and only then execs the probe, so nothing of the sandbox's root (a setpriv, a loader, a libc
// the layer ships or its writable root holds) ever runs with the agent's credentials. nsenter +
// the root's own setpriv did, with SELinux off or permissive. With SELinux on it targets the
// service's own main process and takes its context (--follow-context), so the probe runs in the
// layer's domain and pair (doc/selinux.md, "Writable roots").
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { run as runTool } from '../../../common/index.ts';
import { childrenOf } from '../proc-tree.ts';
import type { Run } from '../runner.ts';
import { normalizeCap, selinuxEnabled } from '../sandbox.ts';
import { SANDBOX_EXEC_HELPER, SANDBOX_EXEC_NAME } from '../sandbox-exec-build.ts';
import type { UnitSpec } from '../unit-spec.ts';
import { type ReadinessCondition, unlessAborted } from './condition.ts';
import { pollDelay, sleep } from './poll.ts';

const PROBE_TIMEOUT_MS = 10_000;

type ProbeSpec = Pick<
  UnitSpec,
  'uid' | 'gid' | 'capabilityBoundingSet' | 'selinuxLabel' | 'supplementaryGids' | 'workingDirectory'
>;

/** A process's SELinux context (`/proc/PID/attr/current`), without its trailing NUL. */
async function contextOf(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/attr/current`, 'utf8').catch(() => undefined);
  return text?.replace(/[\0\n]+$/, '');
}

/**
 * The mway-sandbox-exec argv of one probe entering `target`'s namespaces; `follow`: its exec
 * takes `target`'s SELinux context (the service's own process, already in its domain and pair).
 */
export function probeArgs(
  spec: ProbeSpec,
  target: number,
  command: readonly string[],
  follow: boolean,
): string[] {
  const caps = [...new Set(spec.capabilityBoundingSet.map(normalizeCap))].sort();
  return [
    `--target=${target}`,
    ...(follow ? ['--follow-context'] : []),
    `--uid=${spec.uid}`,
    `--gid=${spec.gid}`,
    `--groups=${(spec.supplementaryGids ?? []).join(',')}`,
    `--caps=${caps.join(',')}`,
    // Following a context, the probe starts at the sandbox's `/`: the helper enters the working
    // directory before it drops the agent's credentials, and the service's (often a volume, the
    // layer's private data) is one the agent may not read (doc/selinux.md). Otherwise the service's.
    `--wd=${follow ? '/' : spec.workingDirectory}`,
    '--',
    ...command,
  ];
}

/** CoreOS's helper, or on a development host the one on PATH (a test builds it). */
function helper(): string {
  return existsSync(SANDBOX_EXEC_HELPER) ? SANDBOX_EXEC_HELPER : SANDBOX_EXEC_NAME;
}

/** Where the probe enters: bwrap's PID 1, or with SELinux the service's process in its domain. */
async function probeTarget(
  spec: ProbeSpec,
  sandboxPid: number,
): Promise<{ pid: number; follow: boolean } | undefined> {
  const label = selinuxEnabled() ? spec.selinuxLabel : undefined;
  if (label === undefined) return { pid: sandboxPid, follow: false };
  // bwrap's PID 1 forks the service, which enters its domain at its exec; until then there
  // is nothing to follow and the probe waits.
  const [main] = await childrenOf(sandboxPid);
  if (main === undefined || (await contextOf(main)) !== label) return undefined;
  return { pid: main, follow: true };
}

/** Runs the probe in the sandbox of `sandboxPid` until it exits 0, at most `maxIntervalMs` apart. */
export async function waitExec(
  spec: ProbeSpec,
  sandboxPid: number,
  command: readonly string[],
  maxIntervalMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    const at = await probeTarget(spec, sandboxPid);
    const r =
      at === undefined
        ? { exitCode: 1 }
        : await runTool(helper(), probeArgs(spec, at.pid, command, at.follow), {
            timeout: PROBE_TIMEOUT_MS,
            reject: false,
          }).catch(() => ({ exitCode: 1 }));
    if (r.exitCode === 0) return true;
    await sleep(pollDelay(attempt, maxIntervalMs));
  }
  return false;
}

export function execCondition(
  spec: UnitSpec,
  command: readonly string[],
  maxIntervalMs: number,
): ReadinessCondition {
  return {
    what: `probe ${JSON.stringify(command.join(' '))} to exit 0`,
    async wait(run: Run, signal: AbortSignal) {
      const pid = await unlessAborted(run.namespacePid, signal, undefined);
      return pid !== undefined && (await waitExec(spec, pid, command, maxIntervalMs, signal));
    },
  };
}
