// Readiness probes other than sd_notify: a TCP port that accepts, or a command that exits 0
// run inside the service's sandbox namespaces (nsenter into bwrap's PID 1).
import { connect } from 'node:net';
import { run } from '../../common/index.ts';
import { setprivArgs } from './sandbox.ts';
import type { ServiceSpec } from './service-spec.ts';

// Probes start quickly and back off to a ceiling: most services are ready within a few
// milliseconds of their first probe, and a slow one is not polled harder than this.
const TCP_POLL_MAX_MS = 50;
const EXEC_POLL_MAX_MS = 100;

/** 5, 10, 20, 40 … ms, capped at `max`. */
export function pollDelay(attempt: number, max: number): number {
  return Math.min(5 * 2 ** Math.min(attempt, 16), max);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tcpOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls until the port accepts; returns false when `signal` aborts first. */
export async function waitTcp(host: string, port: number, signal: AbortSignal): Promise<boolean> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    if (await tcpOnce(host, port)) return true;
    await sleep(pollDelay(attempt, TCP_POLL_MAX_MS));
  }
  return false;
}

/** Runs the probe in the sandbox of `sandboxPid` until it exits 0. */
export async function waitExec(
  spec: ServiceSpec,
  sandboxPid: number,
  command: string[],
  signal: AbortSignal,
): Promise<boolean> {
  const caps = spec.capabilities;
  for (let attempt = 0; !signal.aborted; attempt++) {
    const r = await run(
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
        ...setprivArgs(spec.uid, spec.gid, caps),
        ...command,
      ],
      { timeout: 10_000, reject: false },
    ).catch(() => ({ exitCode: 1 }));
    if (r.exitCode === 0) return true;
    await sleep(pollDelay(attempt, EXEC_POLL_MAX_MS));
  }
  return false;
}
