// Progress for long steps, on stderr and only on a terminal (never in --json mode
// or in CI logs), so scripted output stays clean.

export interface Progress {
  step(name: string): void;
  bytes(done: number, total: number): void;
  done(summary?: string): void;
}

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

/** A progress reporter; silent unless stderr is a TTY and `json` is not set. */
export function createProgress(options: { json?: boolean | undefined; enabled?: boolean } = {}): Progress {
  const enabled = options.enabled ?? (process.stderr.isTTY === true && options.json !== true);
  if (!enabled) return silent;
  let current = '';
  let last = 0;
  const write = (s: string) => process.stderr.write(`\r\x1b[K${s}`);
  return {
    step(name) {
      if (current !== '') process.stderr.write('\n');
      current = name;
      write(`• ${name}`);
    },
    bytes(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? ` ${((done / total) * 100).toFixed(0)}%` : '';
      write(`• ${current}: ${human(done)} / ${human(total)}${pct}`);
    },
    done(summary) {
      if (current !== '') process.stderr.write('\n');
      if (summary !== undefined) process.stderr.write(`${summary}\n`);
      current = '';
    },
  };
}
