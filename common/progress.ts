// Progress for long steps (build, pack, import, upload, update, verify): on stderr, and only
// when stderr is a terminal, `--json` and `--quiet` are not given and TERM is not `dumb`,
// so scripted output and CI logs stay clean (doc/cli.md, Output).

export interface Progress {
  step(name: string): void;
  bytes(done: number, total: number): void;
  done(summary?: string): void;
}

/** Where progress goes: process.stderr, or a test's stand-in. */
export interface ProgressStream {
  isTTY?: boolean | undefined;
  write(s: string): unknown;
}

/** The flag of every verb that shows progress (spread into its argument table). */
export const progressArgs = {
  quiet: {
    type: 'boolean',
    alias: 'q',
    description: 'No progress on stderr (shown only on a terminal, and never with --json)',
  },
} as const;

const silent: Progress = { step() {}, bytes() {}, done() {} };

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function formatBytes(n: number): string {
  return human(n);
}

export interface ProgressOptions {
  json?: boolean | undefined;
  quiet?: boolean | undefined;
  /** Overrides the TTY/--json/--quiet decision (tests). */
  enabled?: boolean;
  stream?: ProgressStream;
  /** Milliseconds clock (tests). */
  now?: () => number;
}

/** Whether progress is shown on `stream` for these flags. */
export function progressShown(o: ProgressOptions = {}, stream: ProgressStream = process.stderr): boolean {
  return stream.isTTY === true && o.json !== true && o.quiet !== true && process.env.TERM !== 'dumb';
}

/** Rates are shown once a step has run this long: before that they are noise. */
const RATE_AFTER_MS = 250;
/** At most one redraw per this many ms (a redraw per 4 KiB block would cost more than the work). */
const REDRAW_MS = 100;

/**
 * A progress reporter. `bytes(done, total)` redraws one line: the step, bytes done of total,
 * the percentage and the rate since the step began; `step()` ends the line of the last one.
 */
export function createProgress(o: ProgressOptions = {}): Progress {
  const stream = o.stream ?? process.stderr;
  if (!(o.enabled ?? progressShown(o, stream))) return silent;
  const now = o.now ?? Date.now;
  let current = '';
  let started = now();
  let last = Number.NEGATIVE_INFINITY;
  const write = (s: string) => stream.write(`\r\x1b[K${s}`);
  return {
    step(name) {
      if (current !== '') stream.write('\n');
      current = name;
      started = now();
      last = Number.NEGATIVE_INFINITY;
      write(`• ${name}`);
    },
    bytes(done, total) {
      const t = now();
      if (t - last < REDRAW_MS && done < total) return;
      last = t;
      const pct = total > 0 ? ` ${((done / total) * 100).toFixed(0)}%` : '';
      const ms = t - started;
      const rate = ms >= RATE_AFTER_MS ? `, ${human((done * 1000) / ms)}/s` : '';
      write(`• ${current}: ${human(done)} / ${human(total)}${pct}${rate}`);
    },
    done(summary) {
      if (current !== '') stream.write('\n');
      if (summary !== undefined) stream.write(`${summary}\n`);
      current = '';
    },
  };
}
