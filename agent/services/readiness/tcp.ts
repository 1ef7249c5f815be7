// Readiness `tcp`: a connect to host:port succeeds (the service shares the host network).
import { connect } from 'node:net';
import type { ReadinessCondition } from './condition.ts';
import { pollDelay, sleep } from './poll.ts';

const TCP_POLL_MAX_MS = 50;

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

export function tcpCondition(host: string, port: number): ReadinessCondition {
  return { what: `a connect to ${host}:${port}`, wait: (_run, signal) => waitTcp(host, port, signal) };
}
