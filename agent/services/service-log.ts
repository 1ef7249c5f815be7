// One service's log: lines from stdout/stderr with timestamps, kept in a bounded ring in
// memory and appended to size-rotated files on the data partition. A flood cannot exhaust
// memory (ring of capped lines, bounded write queue) or disk (files × size), and what was
// dropped is counted and said in the log itself.
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LogLine } from '../core/agent-api.ts';
import type { LogConfig } from '../core/agent-config.ts';

/** Longer lines are cut here (a line without newline cannot grow without bound). */
export const MAX_LINE_BYTES = 8192;

export class ServiceLog {
  readonly #ring: (LogLine | undefined)[];
  #next = 0;
  #count = 0;
  #stored = 0;
  readonly #config: LogConfig;
  readonly #file: string | undefined;
  #fd: number | undefined;
  #size = 0;
  #windowStart = 0;
  #windowLines = 0;
  #dropped = 0;
  readonly #partial = { stdout: '', stderr: '' };

  /** `dir` undefined keeps the log in memory only. */
  constructor(name: string, config: LogConfig, dir?: string) {
    this.#config = config;
    this.#ring = new Array(config.ringLines);
    this.#file = dir === undefined ? undefined : join(dir, `${name.replaceAll('/', '_')}.log`);
  }

  /** Feeds a chunk of a stream; complete lines are logged, the tail waits for its newline. */
  feed(stream: 'stdout' | 'stderr', chunk: string): void {
    let text = this.#partial[stream] + chunk;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      this.add(stream, text.slice(0, nl));
      text = text.slice(nl + 1);
      nl = text.indexOf('\n');
    }
    if (text.length > MAX_LINE_BYTES) {
      this.add(stream, text);
      text = '';
    }
    this.#partial[stream] = text;
  }

  /** Logs what is left of an unterminated last line (the stream ended). */
  flush(): void {
    if (this.#dropped > 0) {
      this.#store({
        time: new Date().toISOString(),
        stream: 'agent',
        text: `${this.#dropped} lines dropped (rate limit)`,
      });
      this.#dropped = 0;
    }
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream] !== '') this.add(stream, this.#partial[stream]);
      this.#partial[stream] = '';
    }
  }

  add(stream: LogLine['stream'], text: string, now = Date.now()): void {
    if (now - this.#windowStart >= 1000) {
      if (this.#dropped > 0) {
        const n = this.#dropped;
        this.#dropped = 0;
        this.#store({
          time: new Date(now).toISOString(),
          stream: 'agent',
          text: `${n} lines dropped (rate limit)`,
        });
      }
      this.#windowStart = now;
      this.#windowLines = 0;
    }
    if (stream !== 'agent' && ++this.#windowLines > this.#config.rateLinesPerSecond) {
      this.#dropped++;
      return;
    }
    const cut = text.length > MAX_LINE_BYTES ? `${text.slice(0, MAX_LINE_BYTES)}…[truncated]` : text;
    this.#store({ time: new Date(now).toISOString(), stream, text: cut });
  }

  /** Lines stored since the log was made (a run's own lines are those after its start's count). */
  get stored(): number {
    return this.#stored;
  }

  #store(line: LogLine): void {
    this.#stored++;
    this.#ring[this.#next] = line;
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
    this.#write(`${line.time} ${line.stream} ${line.text}\n`);
  }

  #write(text: string): void {
    if (this.#file === undefined) return;
    try {
      if (this.#fd === undefined) {
        this.#fd = openSync(this.#file, 'a', 0o640);
        this.#size = fstatSync(this.#fd).size;
      }
      const bytes = Buffer.from(text);
      if (this.#size + bytes.length > this.#config.fileBytes) this.#rotate();
      if (this.#fd === undefined) return;
      writeSync(this.#fd, bytes);
      this.#size += bytes.length;
    } catch {
      // A full or read-only data partition must not take the supervisor down; the ring
      // still has the lines.
      this.close();
    }
  }

  #rotate(): void {
    if (this.#file === undefined) return;
    this.close();
    const n = this.#config.files;
    rmSync(`${this.#file}.${n}`, { force: true });
    for (let i = n - 1; i >= 1; i--) {
      try {
        renameSync(`${this.#file}.${i}`, `${this.#file}.${i + 1}`);
      } catch {
        // that generation does not exist yet
      }
    }
    renameSync(this.#file, `${this.#file}.1`);
    this.#fd = openSync(this.#file, 'a', 0o640);
    this.#size = 0;
  }

  /** The last `lines` lines, oldest first. */
  tail(lines = 100): LogLine[] {
    const n = Math.max(0, Math.min(lines, this.#count));
    const out: LogLine[] = [];
    for (let i = n; i >= 1; i--) {
      const line = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length];
      if (line !== undefined) out.push(line);
    }
    return out;
  }

  close(): void {
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd);
      } catch {
        // already closed
      }
      this.#fd = undefined;
    }
  }
}
