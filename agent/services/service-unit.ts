// One supervised service: the restart policy around a runner (Talos's restart decorator,
// runner/restart/restart.go). It starts a run, waits for the readiness conditions within
// the start timeout, and when the run ends decides by restart-policy.ts whether to start
// it again after a backoff or to settle as exited or failed. How a run is isolated is the
// runner's (sandbox-runner.ts); the order between services is the supervisor's.
import type { ServiceInfo, ServiceState } from '../core/agent-api.ts';
import { splitContext } from '../core/selinux-state.ts';
import { type ReadinessCondition, unmet } from './readiness/conditions.ts';
import { HEALTHY_MS, restartDelay, restartsAfter, runFailed, StartLimit } from './restart-policy.ts';
import type { Run, RunExit, Runner, RunOptions } from './runner.ts';
import type { ServiceLog } from './service-log.ts';
import type { UnitSpec } from './unit-spec.ts';

/** Lines of a run's own output kept with its exit (ServiceInfo.lastOutput). */
export const LAST_OUTPUT_LINES = 10;

/** Time as the policy sees it; tests pass a fake one to run minutes of backoff in milliseconds. */
export interface Clock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface UnitContext {
  runner: Runner;
  /** The readiness conditions of one run (fresh for each run). */
  readiness: () => ReadinessCondition[];
  log: ServiceLog;
  changed: (unit: ServiceUnit) => void;
  clock?: Clock;
}

export class ServiceUnit {
  readonly spec: UnitSpec;
  readonly ctx: UnitContext;
  state: ServiceState = 'stopped';
  since = new Date().toISOString();
  error: string | undefined;
  lastExit: ServiceInfo['lastExit'];
  /** The last lines the last run printed (stdout/stderr), kept when it ended. */
  lastOutput: string[] | undefined;
  limitsNotApplied: readonly string[] = [];
  readonly #clock: Clock;
  readonly #limit: StartLimit;
  #run: Run | undefined;
  /** Settles once the current run has ended and its outcome is decided. */
  #ended: Promise<void> = Promise.resolve();
  #attempt = 0;
  #startedAt = 0;
  #wantRunning = false;
  #timer: unknown;
  #abort: AbortController | undefined;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** How the last run that failed ended, for the start limit's message. */
  #lastReason: string | undefined;
  /** The log's line count when the current run started. */
  #logMark = 0;

  constructor(spec: UnitSpec, ctx: UnitContext) {
    this.spec = spec;
    this.ctx = ctx;
    this.#clock = ctx.clock ?? realClock;
    this.#limit = new StartLimit(spec.startLimitBurst, ms(spec.startLimitIntervalSec));
  }

  get pid(): number | undefined {
    return this.#run?.pid;
  }

  info(): ServiceInfo {
    const out: ServiceInfo = {
      name: this.spec.name,
      layer: this.spec.layer,
      state: this.state,
      restarts: Math.max(0, this.#limit.count - 1),
      since: this.since,
      limitsNotApplied: [...this.limitsNotApplied],
    };
    const pid = this.pid;
    if (pid !== undefined) out.pid = pid;
    if (this.lastExit !== undefined) out.lastExit = this.lastExit;
    if (this.error !== undefined) out.error = this.error;
    if (this.lastOutput !== undefined) out.lastOutput = [...this.lastOutput];
    const label = this.spec.selinuxLabel;
    if (label !== undefined) {
      const { type, level } = splitContext(label);
      out.selinux = { context: label, domain: type, level };
    }
    return out;
  }

  #set(state: ServiceState, error?: string): void {
    this.state = state;
    this.since = new Date(this.#clock.now()).toISOString();
    this.error = error;
    if (state === 'running') for (const w of this.#readyWaiters.splice(0)) w.resolve();
    if (state === 'failed' || state === 'exited' || state === 'stopped') {
      const e = new Error(error ?? `${this.spec.name} is ${state}`);
      for (const w of this.#readyWaiters.splice(0)) w.reject(e);
    }
    this.ctx.changed(this);
  }

  /** Marks a stopped service as waiting for its requirements (startAll does). */
  markWaiting(): void {
    if (this.state === 'stopped' || this.state === 'exited' || this.state === 'failed') this.#set('waiting');
  }

  /** Starting, waiting or in backoff: a start is under way and has not settled. */
  get busy(): boolean {
    return this.state === 'starting' || this.state === 'waiting' || this.state === 'backoff';
  }

  /** Resolves once a start under way has settled (ready, or failed or stopped first). */
  settled(): Promise<void> {
    return this.busy ? this.whenReady().catch(() => {}) : Promise.resolve();
  }

  /** Fails a service that is not running without starting it (a requirement failed). */
  refuse(reason: string): void {
    if (this.state === 'running' || this.state === 'starting' || this.state === 'backoff') return;
    this.ctx.log.add('agent', `not started: ${reason}`);
    this.#set('failed', reason);
  }

  /** Resolves when the service is running (ready); rejects when it fails or stops first. */
  whenReady(): Promise<void> {
    if (this.state === 'running') return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /** Starts (or resets a failed service and starts it); resolves when it is ready. */
  async start(): Promise<void> {
    if (this.state === 'stopping') await this.#ended;
    this.#wantRunning = true;
    if (this.state === 'running') return;
    if (this.state === 'starting' || this.state === 'backoff') return this.whenReady();
    this.#limit.reset();
    this.#attempt = 0;
    const ready = this.whenReady();
    void this.#spawn();
    return ready;
  }

  async #spawn(): Promise<void> {
    const spec = this.spec;
    const now = this.#clock.now();
    if (!this.#limit.admit(now)) {
      this.#wantRunning = false;
      const last = this.#lastReason === undefined ? '' : `; the last run: ${this.#lastReason}`;
      this.#set(
        'failed',
        `start limit hit: more than ${spec.startLimitBurst} starts in ${spec.startLimitIntervalSec} s${last}`,
      );
      return;
    }
    this.#set('starting');
    this.#startedAt = now;
    this.#logMark = this.ctx.log.stored;
    const conditions = this.ctx.readiness();
    let run: Run;
    let ended: () => void = () => {};
    this.#ended = new Promise<void>((r) => {
      ended = r;
    });
    try {
      const options: RunOptions = Object.assign(
        {},
        ...(await Promise.all(conditions.map((c) => c.prepare?.()))),
      );
      run = await this.ctx.runner.start(options);
    } catch (e) {
      this.ctx.log.add('agent', `cannot start: ${(e as Error).message}`);
      this.lastOutput = this.#ownOutput();
      await closeAll(conditions);
      if (this.state === 'stopping') this.#set('stopped');
      else this.#set('failed', (e as Error).message);
      this.#wantRunning = false;
      ended();
      return;
    }
    this.#run = run;
    this.limitsNotApplied = run.limitsNotApplied;
    // Stopped while the runner was still starting it: stop what it started.
    if (this.state === 'stopping') void run.stop(this.spec.killSignal, ms(this.spec.timeoutStopSec));
    else void this.#awaitReady(run, conditions);
    const exit = await run.exit;
    this.lastExit = { code: exit.code, signal: exit.signal, at: new Date(this.#clock.now()).toISOString() };
    this.lastOutput = this.#ownOutput();
    this.#run = undefined;
    this.#abort?.abort();
    await closeAll(conditions);
    this.#onExit(exit);
    ended();
  }

  async #awaitReady(run: Run, conditions: ReadinessCondition[]): Promise<void> {
    const timeoutMs = ms(this.spec.timeoutStartSec);
    const abort = new AbortController();
    this.#abort = abort;
    const timer = this.#clock.setTimeout(() => abort.abort(), timeoutMs);
    let pending: string[];
    try {
      pending = await unmet(conditions, run, abort.signal);
    } finally {
      this.#clock.clearTimeout(timer);
    }
    if (this.#run !== run || this.state !== 'starting') return;
    if (pending.length === 0) {
      this.ctx.log.add('agent', 'ready');
      this.#set('running');
      return;
    }
    const waited = pending.join(', ');
    this.ctx.log.add('agent', `not ready within ${timeoutMs} ms (waiting for ${waited}); killing`);
    this.error = `not ready within ${timeoutMs} ms (waiting for ${waited})`;
    await run.kill();
  }

  #onExit(exit: RunExit): void {
    const how = exit.signal === null ? `exit status ${exit.code}` : `signal ${exit.signal}`;
    this.ctx.log.add('agent', `exited with ${how}`);
    if (this.state === 'stopping' || !this.#wantRunning) {
      this.#set('stopped');
      return;
    }
    const failed = runFailed(exit, this.error !== undefined);
    const why = this.error ?? how;
    if (failed) this.#lastReason = why;
    if (restartsAfter(this.spec.restart, failed)) {
      if (this.#clock.now() - this.#startedAt >= HEALTHY_MS) this.#attempt = 0;
      const delay = restartDelay(ms(this.spec.restartSec), ms(this.spec.restartMaxDelaySec), this.#attempt);
      this.#attempt++;
      this.#set('backoff', why);
      this.ctx.log.add('agent', `restarting in ${delay} ms`);
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        if (this.#wantRunning && this.state === 'backoff') void this.#spawn();
      }, delay);
      return;
    }
    this.#wantRunning = false;
    if (failed) this.#set('failed', why);
    else this.#set('exited');
  }

  /** The run's own last lines (not the agent's notes about it, nor an earlier run's), newest last. */
  #ownOutput(): string[] {
    return this.ctx.log
      .tail(Math.min(200, this.ctx.log.stored - this.#logMark))
      .filter((l) => l.stream !== 'agent')
      .slice(-LAST_OUTPUT_LINES)
      .map((l) => l.text);
  }

  /** The stop signal to every process of the service, SIGKILL after the stop timeout. */
  async stop(): Promise<void> {
    this.#wantRunning = false;
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.state === 'backoff') this.#set('stopped');
    }
    const run = this.#run;
    if (run === undefined && this.state === 'starting') {
      // The runner is still starting it (#spawn stops the run once it has one).
      this.#set('stopping');
      await this.#ended;
      return;
    }
    if (run === undefined) {
      if (this.state !== 'failed' && this.state !== 'exited' && this.state !== 'stopped')
        this.#set('stopped');
      return;
    }
    this.#set('stopping');
    this.#abort?.abort();
    await run.stop(this.spec.killSignal, ms(this.spec.timeoutStopSec));
    await this.#ended;
  }
}

/** The manifest's seconds as the milliseconds timers take. */
function ms(seconds: number): number {
  return Math.round(seconds * 1000);
}

async function closeAll(conditions: readonly ReadinessCondition[]): Promise<void> {
  await Promise.all(conditions.map((c) => c.close?.()));
}
