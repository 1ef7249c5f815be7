// The restart rules of a service, as systemd states them (systemd.service(5) Restart=,
// RestartSec=, systemd.unit(5) StartLimitBurst=, StartLimitIntervalSec=): pure functions
// and a start counter, so they are tested without a process. service-unit.ts applies them.
import type { RunExit } from './runner.ts';

export type RestartPolicy = 'no' | 'on-failure' | 'always';

/** A run that lasted this long counts as healthy: the next failure starts backoff afresh. */
export const HEALTHY_MS = 10_000;

/** A run failed when it exited non-zero, by a signal, or was killed for not being ready. */
export function runFailed(exit: RunExit, notReady: boolean): boolean {
  return notReady || exit.code !== 0 || exit.signal !== null;
}

/** Whether a run that ended on its own (not stopped) is started again. */
export function restartsAfter(policy: RestartPolicy, failed: boolean): boolean {
  return policy === 'always' || (policy === 'on-failure' && failed);
}

/** The delay before restart number `attempt` (0 first): `firstMs · 2^attempt`, at most `maxMs`. */
export function restartDelay(firstMs: number, maxMs: number, attempt: number): number {
  // 2^attempt overflows to Infinity long before attempt gets large; min() keeps the cap.
  return Math.min(firstMs * 2 ** Math.min(attempt, 1024), maxMs);
}

/**
 * Counts starts in a sliding window: more than `burst` starts within `intervalMs` and the
 * next start is refused (systemd: the unit fails with result start-limit-hit). An interval
 * of 0 turns the limit off, as StartLimitIntervalSec=0 does.
 */
export class StartLimit {
  readonly burst: number;
  readonly intervalMs: number;
  #starts: number[] = [];

  constructor(burst: number, intervalMs: number) {
    this.burst = burst;
    this.intervalMs = intervalMs;
  }

  /** Records a start at `now`; false (nothing recorded) when it would exceed the limit. */
  admit(now: number): boolean {
    if (this.intervalMs === 0) {
      this.#starts = [now];
      return true;
    }
    const recent = this.#starts.filter((t) => now - t < this.intervalMs);
    if (recent.length >= this.burst) {
      this.#starts = recent;
      return false;
    }
    this.#starts = [...recent, now];
    return true;
  }

  /** Starts in the current window (for `restarts`: this minus one). */
  get count(): number {
    return this.#starts.length;
  }

  /** An explicit start forgets the history (systemctl reset-failed + start). */
  reset(): void {
    this.#starts = [];
  }
}
