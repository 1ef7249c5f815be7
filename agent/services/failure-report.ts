// What the agent says on its console and in /dev/kmsg when a service fails or keeps
// restarting: the service, why (exit status, signal, readiness timeout, start limit) and its
// last lines of output. A server has no shell and no SSH, so this line is how a user learns
// why an app did not come up (systemd prints the same in `systemctl status`). Failures are
// always said; restarts at most once per interval per service, with a count of those not said.
import type { LogFields } from '../../common/index.ts';
import type { ServiceInfo } from '../core/agent-api.ts';

/** Output lines a report carries, and how much of each. */
export const REPORT_LINES = 5;
export const REPORT_LINE_CHARS = 240;
/** A crash-looping service is reported at most this often. */
export const RESTART_REPORT_INTERVAL_MS = 10_000;

type Log = (level: 'info' | 'warn' | 'error', message: string, fields?: LogFields) => void;

/** `; last output: a | b` of a service's last lines, or nothing when it printed none. */
export function outputSuffix(lines: readonly string[] | undefined): string {
  if (lines === undefined || lines.length === 0) return '; it printed nothing';
  const shown = lines
    .slice(-REPORT_LINES)
    .map((l) => (l.length > REPORT_LINE_CHARS ? `${l.slice(0, REPORT_LINE_CHARS)}…` : l));
  return `; last output: ${shown.join(' | ')}`;
}

export class FailureReporter {
  readonly #log: Log;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #restarts = new Map<string, { at: number; unsaid: number }>();

  constructor(log: Log, options: { now?: () => number; intervalMs?: number } = {}) {
    this.#log = log;
    this.#now = options.now ?? Date.now;
    this.#intervalMs = options.intervalMs ?? RESTART_REPORT_INTERVAL_MS;
  }

  /** Called on every state change of a service. */
  changed(s: ServiceInfo): void {
    if (s.state === 'failed') {
      const r = this.#restarts.get(s.name);
      this.#restarts.delete(s.name);
      const more = r !== undefined && r.unsaid > 0 ? ` (after ${r.unsaid} more restarts not shown)` : '';
      this.#log(
        'error',
        `service ${s.name} failed: ${s.error ?? 'unknown reason'}${more}${outputSuffix(s.lastOutput)}`,
        { service: s.name, layer: s.layer },
      );
      return;
    }
    if (s.state === 'stopped') this.#restarts.delete(s.name);
    if (s.state !== 'backoff') return;
    const now = this.#now();
    const r = this.#restarts.get(s.name);
    if (r !== undefined && now - r.at < this.#intervalMs) {
      r.unsaid++;
      return;
    }
    const more = r !== undefined && r.unsaid > 0 ? ` (${r.unsaid} more restarts not shown)` : '';
    this.#restarts.set(s.name, { at: now, unsaid: 0 });
    this.#log(
      'warn',
      `service ${s.name} ended (${s.error ?? 'unknown reason'}), restarting${more}${outputSuffix(s.lastOutput)}`,
      { service: s.name, layer: s.layer },
    );
  }
}
