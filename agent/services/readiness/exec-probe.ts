// Readiness `exec`: a probe command exits 0, run inside the service's sandbox namespaces
// (nsenter into bwrap's PID 1) with the service's uid, gid and capabilities.
//
// With SELinux on, nothing of the sandbox's root runs in the agent's domain: nsenter targets the
// service's own main process and takes its context (`--follow-context`, libselinux's
// getpidcon + setexeccon), so the first program it runs inside the root — setpriv, found there —
// already runs in the layer's domain and pair, and so does everything it loads. A writable root
// may hold a setpriv or a libc the service wrote, and the policy refuses the agent running them
// (doc/selinux.md, "Writable roots"); a read-only root's are the layer's too.
import { readFile } from 'node:fs/promises';
import { run as runTool } from '../../../common/index.ts';
import { childrenOf } from '../proc-tree.ts';
import type { Run } from '../runner.ts';
import { selinuxEnabled, setprivArgs } from '../sandbox.ts';
import type { UnitSpec } from '../unit-spec.ts';
import { type ReadinessCondition, unlessAborted } from './condition.ts';
import { pollDelay, sleep } from './poll.ts';

const PROBE_TIMEOUT_MS = 10_000;

type ProbeSpec = Pick<
  UnitSpec,
  'uid' | 'gid' | 'capabilityBoundingSet' | 'selinuxLabel' | 'supplementaryGids'
>;

/** A process's SELinux context (`/proc/PID/attr/current`), without its trailing NUL. */
async function contextOf(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/attr/current`, 'utf8').catch(() => undefined);
  return text?.replace(/[\0\n]+$/, '');
}

/**
 * The nsenter argv of one probe entering `target`'s namespaces; `follow`: its exec takes
 * `target`'s SELinux context (the service's own process, already in its domain and pair).
 */
export function probeArgs(
  spec: ProbeSpec,
  target: number,
  command: readonly string[],
  follow: boolean,
): string[] {
  return [
    `--target=${target}`,
    ...(follow ? ['--follow-context'] : []),
    '--mount',
    '--uts',
    '--ipc',
    '--net',
    '--pid',
    '--root',
    // Following a context, the probe starts at the sandbox's `/`: nsenter opens the working
    // directory it enters, and the service's (often a volume, the layer's private data) is
    // one the agent may not read (doc/selinux.md). Otherwise the service's own.
    follow ? `--wd=/proc/${target}/root` : '--wd',
    '--',
    // With --follow-context the exec of setpriv enters the domain: setpriv sets no label itself.
    ...setprivArgs(spec.uid, spec.gid, spec.capabilityBoundingSet, undefined, spec.supplementaryGids),
    ...command,
  ];
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
        : await runTool('nsenter', probeArgs(spec, at.pid, command, at.follow), {
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
