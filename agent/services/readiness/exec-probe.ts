// Readiness `exec`: a probe command exits 0, run inside the service's sandbox namespaces
// (nsenter into bwrap's PID 1) with the service's uid, gid and capabilities.
import { run as runTool } from '../../../common/index.ts';
import type { Run } from '../runner.ts';
import { selinuxEnabled, setprivArgs } from '../sandbox.ts';
import type { UnitSpec } from '../unit-spec.ts';
import { type ReadinessCondition, unlessAborted } from './condition.ts';
import { pollDelay, sleep } from './poll.ts';

const PROBE_TIMEOUT_MS = 10_000;

/** Runs the probe in the sandbox of `sandboxPid` until it exits 0, at most `maxIntervalMs` apart. */
export async function waitExec(
  spec: Pick<UnitSpec, 'uid' | 'gid' | 'capabilityBoundingSet' | 'selinuxLabel' | 'supplementaryGids'>,
  sandboxPid: number,
  command: readonly string[],
  maxIntervalMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  // The probe runs in the service's domain and pair too (setpriv writes the exec label).
  const label = selinuxEnabled() ? spec.selinuxLabel : undefined;
  for (let attempt = 0; !signal.aborted; attempt++) {
    const r = await runTool(
      'nsenter',
      [
        `--target=${sandboxPid}`,
        '--mount',
        '--uts',
        '--ipc',
        '--net',
        '--pid',
        '--root',
        '--wd',
        '--',
        ...setprivArgs(spec.uid, spec.gid, spec.capabilityBoundingSet, label, spec.supplementaryGids),
        ...command,
      ],
      { timeout: PROBE_TIMEOUT_MS, reject: false },
    ).catch(() => ({ exitCode: 1 }));
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
