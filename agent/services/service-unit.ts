// One supervised service: spawns its sandbox inside its own cgroup, waits for readiness
// within the start timeout, restarts it by policy with exponential backoff until the start
// limit, and stops it with SIGTERM then SIGKILL. The order between services is the
// supervisor's business (agent/services/supervisor.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from '../../common/index.ts';
import type { ServiceInfo, ServiceState } from '../core/agent-api.ts';
import { cgroupPids, createServiceCgroup, killCgroup, removeCgroup, type ServiceCgroup } from './cgroup.ts';
import { listenNotify, type NotifyListener } from './notify-socket.ts';
import { waitExec, waitTcp } from './readiness.ts';
import { bwrapArgs, selinuxEnabled } from './sandbox.ts';
import type { ServiceLog } from './service-log.ts';
import type { ServiceSpec } from './service-spec.ts';

// Puts the shell (and so bwrap, which it execs) into the service's cgroup before anything
// runs, so not even bwrap's first fork escapes it. The script is constant; paths are $1.
const ENTER_CGROUP = '[ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 97; shift; exec "$@"';
// bwrap's outer process exits as soon as its PID-1 helper reports the service's exit
// status, before that helper is reaped; the helper would then be reparented to the agent,
// and Node cannot reap a process it did not spawn. So bwrap runs as PID 1 of one more PID
// namespace (`unshare --pid --fork --kill-child`, with its own /proc so bwrap finds its pids): when it exits, the kernel reaps
// everything below it. It also makes bwrap's outer process immune to our stop signal.
const REAPER = ['--pid', '--fork', '--kill-child', '--mount', '--mount-proc'];
// A run that lasted this long counts as healthy: the next failure starts backoff afresh.
const HEALTHY_MS = 10_000;

// The sandbox tools, looked up on PATH once per agent rather than on every start (each
// lookup is an access() per PATH entry). A failed lookup is not kept: it may be installed later.
const tools = new Map<string, Promise<string>>();
function sandboxTool(name: string): Promise<string> {
  let found = tools.get(name);
  if (found === undefined) {
    found = requireTool(name);
    tools.set(name, found);
    found.catch(() => tools.delete(name));
  }
  return found;
}

export interface UnitContext {
  /** cgroup v2 directory for services, or undefined when there is none. */
  cgroupRoot: string | undefined;
  /** Directory for notify sockets (one subdirectory per service). */
  runDir: string;
  log: ServiceLog;
  changed: (unit: ServiceUnit) => void;
  agentLog: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class ServiceUnit {
  readonly spec: ServiceSpec;
  readonly ctx: UnitContext;
  state: ServiceState = 'stopped';
  since = new Date().toISOString();
  error: string | undefined;
  lastExit: ServiceInfo['lastExit'];
  limitsNotApplied: string[] = [];
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #cgroup: ServiceCgroup | undefined;
  #notify: NotifyListener | undefined;
  #starts: number[] = [];
  #attempt = 0;
  #startedAt = 0;
  #wantRunning = false;
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(spec: ServiceSpec, ctx: UnitContext) {
    this.spec = spec;
    this.ctx = ctx;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  info(): ServiceInfo {
    const out: ServiceInfo = {
      name: this.spec.name,
      layer: this.spec.layer,
      state: this.state,
      restarts: Math.max(0, this.#starts.length - 1),
      since: this.since,
      limitsNotApplied: this.limitsNotApplied,
    };
    const pid = this.pid;
    if (pid !== undefined) out.pid = pid;
    if (this.lastExit !== undefined) out.lastExit = this.lastExit;
    if (this.error !== undefined) out.error = this.error;
    return out;
  }

  #set(state: ServiceState, error?: string): void {
    this.state = state;
    this.since = new Date().toISOString();
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

  /** Resolves when the service is running (ready); rejects when it fails or stops first. */
  whenReady(): Promise<void> {
    if (this.state === 'running') return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /** Starts (or resets a failed service and starts it); resolves when it is ready. */
  async start(): Promise<void> {
    this.#wantRunning = true;
    if (this.state === 'running') return;
    if (this.state === 'starting' || this.state === 'backoff') return this.whenReady();
    this.#starts = [];
    this.#attempt = 0;
    const ready = this.whenReady();
    void this.#spawn();
    return ready;
  }

  async #spawn(): Promise<void> {
    const spec = this.spec;
    const now = Date.now();
    this.#starts = [...this.#starts.filter((t) => now - t < spec.startLimitIntervalMs), now];
    if (this.#starts.length > spec.startLimitBurst) {
      this.#starts.pop();
      this.#wantRunning = false;
      this.#set(
        'failed',
        `start limit hit: more than ${spec.startLimitBurst} starts in ${spec.startLimitIntervalMs} ms`,
      );
      return;
    }
    this.#set('starting');
    this.#startedAt = now;
    try {
      await this.#launch();
    } catch (e) {
      this.ctx.log.add('agent', `cannot start: ${(e as Error).message}`);
      await this.#cleanup();
      this.#wantRunning = false;
      this.#set('failed', (e as Error).message);
    }
  }

  async #launch(): Promise<void> {
    const spec = this.spec;
    const [bwrap, unshare] = await Promise.all([
      sandboxTool('bwrap'),
      sandboxTool('unshare'),
      sandboxTool('setpriv'),
    ]);
    if (this.ctx.cgroupRoot !== undefined) {
      this.#cgroup = await createServiceCgroup(this.ctx.cgroupRoot, spec.name, spec.limits);
      this.limitsNotApplied = this.#cgroup.notApplied;
    } else {
      this.limitsNotApplied = Object.keys(spec.limits).map((k) =>
        k === 'memoryMax' ? 'memory.max' : k === 'pidsMax' ? 'pids.max' : 'cpu.weight',
      );
    }
    if (this.limitsNotApplied.length > 0) {
      this.ctx.log.add(
        'agent',
        `limits not applied (no such cgroup file): ${this.limitsNotApplied.join(', ')}`,
      );
    }
    if (spec.readiness.type === 'notify') {
      this.#notify = await listenNotify(join(this.ctx.runDir, spec.name.replaceAll('/', '_')));
    }
    const args = bwrapArgs(spec, {
      ...(this.#notify === undefined ? {} : { notifyDir: this.#notify.dir }),
      infoFd: 3,
      selinux: selinuxEnabled(),
    });
    // A supervised process lives as long as the service, so it is spawned directly rather
    // than through common/exec.ts run(), which waits for the program to finish.
    const cg = this.#cgroup?.path ?? '';
    const child = spawn('/bin/sh', ['-c', ENTER_CGROUP, 'sh', cg, unshare, ...REAPER, bwrap, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => this.ctx.log.feed('stdout', c));
    child.stderr?.on('data', (c: string) => this.ctx.log.feed('stderr', c));
    // bwrap reports its PID 1's pid as seen in its own PID namespace (the reaper's), so
    // the host pid is found by walking the process tree: unshare → bwrap → sandbox PID 1.
    let sandboxUp: () => void = () => {};
    const up = new Promise<void>((r) => {
      sandboxUp = r;
    });
    const sandboxPid = new Promise<number>((resolve) => {
      let text = '';
      const info = child.stdio[3] as NodeJS.ReadableStream | null;
      info?.setEncoding('utf8');
      info?.on('data', (c: string) => {
        text += c;
        if (/"child-pid"\s*:\s*\d+/.test(text) && child.pid !== undefined) {
          sandboxUp();
          void grandchild(child.pid, 2).then((pid) => {
            if (pid !== undefined) resolve(pid);
          });
        }
      });
    });
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.ctx.log.flush();
        this.lastExit = { code, signal, at: new Date().toISOString() };
        this.#child = undefined;
        void this.#onExit(code, signal).finally(resolve);
      });
    });
    child.once('error', (e) => this.ctx.log.add('agent', `spawn failed: ${e.message}`));
    this.ctx.log.add('agent', `started (pid ${child.pid ?? '?'})`);
    void this.#awaitReady(child, up, sandboxPid);
  }

  async #awaitReady(child: ChildProcess, up: Promise<void>, sandboxPid: Promise<number>): Promise<void> {
    const spec = this.spec;
    const abort = new AbortController();
    this.#abort = abort;
    const timer = setTimeout(() => abort.abort(), spec.startTimeoutMs);
    let ok = false;
    try {
      const r = spec.readiness;
      if (r.type === 'none') {
        // Ready once the sandbox exists (bwrap reported its PID 1), not merely spawned.
        ok =
          (await Promise.race([
            up.then(() => true),
            new Promise<boolean>((res) => abort.signal.addEventListener('abort', () => res(false))),
          ])) === true;
      } else if (r.type === 'notify') {
        const notify = this.#notify;
        ok =
          notify !== undefined &&
          (await Promise.race([
            notify.ready.then(() => true),
            new Promise<boolean>((res) => abort.signal.addEventListener('abort', () => res(false))),
          ]));
      } else if (r.type === 'tcp') ok = await waitTcp(r.host ?? '127.0.0.1', r.port, abort.signal);
      else {
        const pid = await Promise.race([
          sandboxPid,
          new Promise<undefined>((res) => abort.signal.addEventListener('abort', () => res(undefined))),
        ]);
        ok = pid !== undefined && (await waitExec(spec, pid, r.command, abort.signal));
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.#child !== child || this.state !== 'starting') return;
    if (ok) {
      this.ctx.log.add('agent', 'ready');
      this.#set('running');
    } else if (!abort.signal.aborted || this.state === 'starting') {
      this.ctx.log.add('agent', `not ready within ${spec.startTimeoutMs} ms; killing`);
      this.error = `not ready within ${spec.startTimeoutMs} ms`;
      await this.#kill();
    }
  }

  async #onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    await this.#cleanup();
    const how = signal === null ? `exit status ${code}` : `signal ${signal}`;
    this.ctx.log.add('agent', `exited with ${how}`);
    if (this.state === 'stopping' || !this.#wantRunning) {
      this.#set('stopped');
      return;
    }
    const failedRun = code !== 0 || signal !== null || this.error !== undefined;
    const policy = this.spec.restart;
    if (policy === 'always' || (policy === 'on-failure' && failedRun)) {
      if (Date.now() - this.#startedAt >= HEALTHY_MS) this.#attempt = 0;
      const delay = Math.min(this.spec.backoffMs * 2 ** this.#attempt, this.spec.backoffMaxMs);
      this.#attempt++;
      this.#set('backoff', this.error);
      this.ctx.log.add('agent', `restarting in ${delay} ms`);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.#wantRunning && this.state === 'backoff') void this.#spawn();
      }, delay);
      return;
    }
    this.#wantRunning = false;
    if (failedRun) this.#set('failed', this.error ?? how);
    else this.#set('exited');
  }

  async #cleanup(): Promise<void> {
    this.#abort?.abort();
    this.#notify?.close();
    if (this.#notify !== undefined) await rm(this.#notify.dir, { recursive: true, force: true });
    this.#notify = undefined;
    if (this.#cgroup !== undefined) {
      await killCgroup(this.#cgroup.path);
      await removeCgroup(this.#cgroup.path);
      this.#cgroup = undefined;
    }
  }

  /**
   * SIGKILLs the sandbox by killing the reaper namespace's PID 1 (bwrap's outer process):
   * the kernel then kills and reaps everything in that namespace, and unshare, our child,
   * exits on its own. Killing unshare first would orphan bwrap to the agent as a zombie.
   */
  async #kill(): Promise<void> {
    const pid = this.#child?.pid;
    if (pid !== undefined) {
      for (const p of await childrenOf(pid)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      const exited = this.#exited;
      const late = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), 2000)),
      ]);
      if (!late) return;
    }
    // Still there (the tree was not formed yet): the whole cgroup, then the process group.
    if (this.#cgroup !== undefined) await killCgroup(this.#cgroup.path);
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** SIGTERM to every process of the service, SIGKILL after the stop timeout. */
  async stop(): Promise<void> {
    this.#wantRunning = false;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.state === 'backoff') this.#set('stopped');
    }
    const child = this.#child;
    if (child === undefined) {
      if (this.state !== 'failed' && this.state !== 'exited' && this.state !== 'stopped')
        this.#set('stopped');
      return;
    }
    this.#set('stopping');
    this.#abort?.abort();
    const exited = this.#exited;
    // Not to bwrap's outer process: it does not forward signals, and its death would
    // SIGKILL the sandbox (--die-with-parent) before the service could shut down cleanly.
    const cgroup = this.#cgroup;
    const signaled = new Set<number>();
    // The stop signal goes to every process of the service except unshare (our child): its
    // death would orphan bwrap. bwrap's PID-1 processes ignore it (namespace inits), the
    // service gets it, and the sandbox ends when the service does.
    const term = async () => {
      const pids =
        cgroup !== undefined
          ? await cgroupPids(cgroup.path)
          : child.pid === undefined
            ? []
            : await descendantsOf(child.pid);
      for (const p of pids.filter((x) => x !== child.pid && !signaled.has(x))) {
        signaled.add(p);
        try {
          process.kill(p, this.spec.stopSignal as NodeJS.Signals);
        } catch {
          // exited meanwhile
        }
      }
    };
    await term();
    // Processes that appear after the first SIGTERM (a sandbox still being set up, a
    // fork racing the stop) get theirs too.
    const again = setInterval(() => void term(), 100);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.spec.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    clearInterval(again);
    if (timedOut) {
      this.ctx.log.add('agent', `still running ${this.spec.stopTimeoutMs} ms after SIGTERM; SIGKILL`);
      await this.#kill();
      await exited;
    }
  }
}

async function childrenOf(pid: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const p of text.split(' ')) if (p.trim() !== '') out.push(Number(p));
  }
  return out;
}

/** The first descendant `depth` levels below `pid` (bounded retries while the tree forms). */
async function grandchild(pid: number, depth: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let cur: number | undefined = pid;
    for (let i = 0; i < depth && cur !== undefined; i++) cur = (await childrenOf(cur))[0];
    if (cur !== undefined) return cur;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** Every descendant of `pid` (bounded: a fork bomb must not stall the stop). */
async function descendantsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 10_000) {
    const cur = queue.shift() as number;
    for (const c of await childrenOf(cur)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
