// A runner and a clock for testing the restart policy (agent/services/service-unit.ts)
// without processes: each run is up at once and ends when the test says so, and time moves
// only when the test advances it, so minutes of backoff take milliseconds.
import type { Run, RunExit, Runner, RunOptions } from '../../../agent/services/runner.ts';
import type { Clock } from '../../../agent/services/service-unit.ts';

/** Lets every promise chain that is ready settle (no I/O is pending in these tests). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class FakeClock implements Clock {
  t = 1_000_000;
  #next = 1;
  #timers: { id: number; at: number; f: () => void }[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(f: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.push({ id, at: this.t + ms, f });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((x) => x.id !== handle);
  }

  /** Pending timers' delays from now, soonest first. */
  pending(): number[] {
    return this.#timers.map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing due timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const due = this.#timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((x) => x !== due);
      this.t = due.at;
      due.f();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

export class FakeRun implements Run {
  readonly pid: number;
  readonly up = Promise.resolve();
  readonly namespacePid: Promise<number>;
  readonly exit: Promise<RunExit>;
  readonly options: RunOptions;
  readonly limitsNotApplied: readonly string[] = [];
  readonly stops: { signal: NodeJS.Signals; timeoutMs: number }[] = [];
  killed = false;
  ended = false;
  #resolve: (e: RunExit) => void = () => {};

  constructor(pid: number, options: RunOptions) {
    this.pid = pid;
    this.options = options;
    this.namespacePid = Promise.resolve(pid);
    this.exit = new Promise((r) => {
      this.#resolve = r;
    });
  }

  /** The process ends on its own. */
  end(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.ended) return;
    this.ended = true;
    this.#resolve({ code, signal });
  }

  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<{ exit: RunExit; killed: boolean }> {
    this.stops.push({ signal, timeoutMs });
    this.end(null, signal);
    return { exit: await this.exit, killed: false };
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.end(null, 'SIGKILL');
    await this.exit;
  }
}

export class FakeRunner implements Runner {
  readonly runs: FakeRun[] = [];
  /** When set, start() rejects with it. */
  refuse: Error | undefined;

  async start(options: RunOptions): Promise<Run> {
    if (this.refuse !== undefined) throw this.refuse;
    const run = new FakeRun(10_000 + this.runs.length, options);
    this.runs.push(run);
    return run;
  }

  get last(): FakeRun {
    const r = this.runs.at(-1);
    if (r === undefined) throw new Error('no run started');
    return r;
  }
}
