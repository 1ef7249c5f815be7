// Polling for the probes (tcp, exec): they start quickly and back off to a ceiling, since
// most services are ready within a few milliseconds of their first probe, and a slow one
// is not polled harder than the ceiling.

/** 5, 10, 20, 40 … ms, capped at `max`. */
export function pollDelay(attempt: number, max: number): number {
  return Math.min(5 * 2 ** Math.min(attempt, 16), max);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
