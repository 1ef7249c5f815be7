// A readiness condition: what must hold before a started service counts as running. A run
// is ready when every condition of its service holds (Talos's conditions.WaitForAll); the
// restart policy (service-unit.ts) bounds the wait with the start timeout.
import type { Run, RunOptions } from '../runner.ts';

export interface ReadinessCondition {
  /** What is awaited, for the log and the timeout message (`READY=1 on $NOTIFY_SOCKET`). */
  readonly what: string;
  /** Sets up what the run needs before it starts (a notify socket to bind in). */
  prepare?(): Promise<RunOptions>;
  /** Resolves true once the condition holds for `run`, false when `signal` aborts first. */
  wait(run: Run, signal: AbortSignal): Promise<boolean>;
  /** Releases what prepare() set up, once the run has ended. */
  close?(): Promise<void>;
}

/** Resolves with `p`'s value, or `fallback` once `signal` aborts. */
export function unlessAborted<T, F>(p: Promise<T>, signal: AbortSignal, fallback: F): Promise<T | F> {
  if (signal.aborted) return Promise.resolve(fallback);
  return Promise.race([
    p,
    new Promise<F>((resolve) => signal.addEventListener('abort', () => resolve(fallback), { once: true })),
  ]);
}

/** Waits for every condition; resolves with what did not hold (none: ready) once all settled. */
export async function unmet(
  conditions: readonly ReadinessCondition[],
  run: Run,
  signal: AbortSignal,
): Promise<string[]> {
  const results = await Promise.all(conditions.map((c) => c.wait(run, signal)));
  return conditions.filter((_, i) => results[i] !== true).map((c) => c.what);
}
