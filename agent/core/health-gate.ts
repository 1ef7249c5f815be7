// The health gate of a trial boot (doc/how-to-update.md, "The health gate"): Container
// Linux's update_engine marks a boot good 45 s after it came up; greenboot runs checks first.
// Here the checks must all pass within `readyWithinMs` of the start, then keep passing for
// `graceMs` (a service that fails a few seconds after it was ready is caught), checked every
// `pollMs`. The check says what is not ready yet, or null when all is; pure of the agent, so
// it is tested against a fake check in milliseconds.

export interface GateOptions {
  /** null when healthy, else what is not (the reason a failed gate reports). */
  check: () => Promise<string | null>;
  readyWithinMs: number;
  graceMs: number;
  pollMs?: number;
  /** Stops the wait early (shutdown); the gate then fails with this reason. */
  signal?: AbortSignal;
  onPhase?: (phase: 'waiting' | 'grace') => void;
}

export type GateResult = { ok: true; readyAfterMs: number } | { ok: false; reason: string };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export async function runHealthGate(o: GateOptions): Promise<GateResult> {
  const poll = o.pollMs ?? 250;
  const aborted = () => o.signal?.aborted === true;
  const start = Date.now();
  o.onPhase?.('waiting');
  let why: string | null = 'not checked yet';
  for (;;) {
    if (aborted()) return { ok: false, reason: 'the agent shut down during the health gate' };
    why = await o.check();
    if (why === null) break;
    if (Date.now() - start >= o.readyWithinMs)
      return { ok: false, reason: `not healthy within ${Math.round(o.readyWithinMs / 1000)} s: ${why}` };
    await sleep(poll, o.signal);
  }
  const readyAfterMs = Date.now() - start;
  o.onPhase?.('grace');
  const graceEnd = Date.now() + o.graceMs;
  while (Date.now() < graceEnd) {
    await sleep(Math.min(poll, Math.max(0, graceEnd - Date.now())), o.signal);
    if (aborted()) return { ok: false, reason: 'the agent shut down during the health gate' };
    const w = await o.check();
    if (w !== null)
      return {
        ok: false,
        reason: `healthy after ${Math.round(readyAfterMs / 1000)} s, then not during the grace period: ${w}`,
      };
  }
  return { ok: true, readyAfterMs };
}
