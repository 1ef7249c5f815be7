// The bubblewrap runner: one run of a service is `sh` (entering the service's cgroup) →
// `unshare` (a reaper PID namespace) → `bwrap` (the sandbox, sandbox.ts) → setpriv → the
// service. It owns the process tree and the cgroup of a run; what to do when the run ends
// is the restart policy's (service-unit.ts). Moved here from service-unit.ts unchanged:
// the cgroup entry, the reaper namespace, the info-fd pid walk, stop and kill.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from '../../common/index.ts';
import {
  cgroupPids,
  createServiceCgroup,
  killCgroup,
  limitFiles,
  removeCgroup,
  type ServiceCgroup,
} from './cgroup.ts';
import { childrenOf, descendantAt, descendantsOf } from './proc-tree.ts';
import type { Run, RunExit, Runner, RunOptions } from './runner.ts';
import { bwrapArgs, SYSTEM_BUS_DIR, selinuxEnabled } from './sandbox.ts';
import type { ServiceLog } from './service-log.ts';
import type { UnitSpec } from './unit-spec.ts';

// Puts the shell (and so bwrap, which it execs) into the service's cgroup before anything
// runs, so not even bwrap's first fork escapes it. The script is constant; paths are $1.
const ENTER_CGROUP = '[ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 97; shift; exec "$@"';
// bwrap's outer process exits as soon as its PID-1 helper reports the service's exit
// status, before that helper is reaped; the helper would then be reparented to the agent,
// and Node cannot reap a process it did not spawn. So bwrap runs as PID 1 of one more PID
// namespace (`unshare --pid --fork --kill-child`, with its own /proc so bwrap finds its pids): when it exits, the kernel reaps
// everything below it. It also makes bwrap's outer process immune to our stop signal.
export const REAPER = ['--pid', '--fork', '--kill-child', '--mount', '--mount-proc'];
// writableRoot ephemeral: inside the run's own mount namespace (the reaper's), a tmpfs on the
// service's empty scratch directory ($2, made by the agent) holds the upper layer of an
// overlay on the read-only root ($1), so writes anywhere work, are private to the run and
// vanish with its namespace (a container's writable layer). $3 is empty or, with SELinux on,
// `,context="…"` of the layer's root type and pair for both mounts: what the service sees and
// what overlayfs copies up is then that type, not the payload's read-only one (doc/selinux.md,
// "Writable roots"). The script is constant.
const WRITABLE_ROOT =
  'set -e; mount -t tmpfs -o "mode=0755,nodev,nosuid$3" mway-rw "$2"; mkdir "$2/upper" "$2/work" "$2/root"; ' +
  'mount -t overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work,nodev,nosuid$3" mway-root "$2/root"; shift 3; exec "$@"';
// writableRoot persistent: the same overlay, its upper and work directories kept on the data
// partition ($2, agent/layers/writable-root.ts), mounted on the run's scratch directory ($3)
// in the run's own mount namespace, so only the run sees it and it is gone with the run while
// what it wrote stays; $4 as $3 above. The script is constant.
const PERSISTENT_ROOT =
  'set -e; mount -t overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work,nodev,nosuid$4" mway-root "$3"; shift 4; exec "$@"';
// A kill that has not ended the run by then falls back to the cgroup and the process group.
const KILL_GRACE_MS = 2000;

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

/** The mount option giving a writable root the layer's root context, when SELinux is on. */
export function rootContextOption(
  spec: Pick<UnitSpec, 'selinuxRootLabel'>,
  selinux = selinuxEnabled(),
): string {
  if (!selinux || spec.selinuxRootLabel === undefined) return '';
  // The quotes keep the context's own ',' (between its categories) inside the one option.
  return `,context="${spec.selinuxRootLabel}"`;
}

export interface SandboxRunnerContext {
  /** cgroup v2 directory for services, or undefined when there is none. */
  cgroupRoot: string | undefined;
  /** Where the run's output and the runner's own notes go. */
  log: ServiceLog;
  /** The agent's run directory: a writable root's scratch mount point is made below it. */
  runDir: string;
}

export class SandboxRunner implements Runner {
  readonly #spec: UnitSpec;
  readonly #ctx: SandboxRunnerContext;

  constructor(spec: UnitSpec, ctx: SandboxRunnerContext) {
    this.#spec = spec;
    this.#ctx = ctx;
  }

  async start(options: RunOptions): Promise<Run> {
    const spec = this.#spec;
    const log = this.#ctx.log;
    const [bwrap, unshare] = await Promise.all([
      sandboxTool('bwrap'),
      sandboxTool('unshare'),
      sandboxTool('setpriv'),
    ]);
    let cgroup: ServiceCgroup | undefined;
    let limitsNotApplied: string[];
    if (this.#ctx.cgroupRoot !== undefined) {
      cgroup = await createServiceCgroup(this.#ctx.cgroupRoot, spec.name, spec);
      limitsNotApplied = cgroup.notApplied;
    } else {
      limitsNotApplied = limitFiles(spec).map(([file]) => file);
    }
    if (limitsNotApplied.length > 0)
      log.add('agent', `limits not applied (no such cgroup file): ${limitsNotApplied.join(', ')}`);
    // A writable root is mounted by a constant script on the run's scratch directory, in
    // the reaper's mount namespace; bwrap then binds the merged root read-write as `/`.
    let rooted = [bwrap];
    let mounted: string | undefined;
    if (spec.writableRoot !== 'no') {
      const scratch = join(this.#ctx.runDir, 'roots', spec.name.replaceAll('/', '_'));
      await mkdir(scratch, { recursive: true, mode: 0o700 });
      if (spec.writableRoot === 'persistent') {
        if (spec.persistentRoot === undefined)
          throw new Error(`${spec.name}: writableRoot persistent without a place for it`);
        rooted = [
          '/bin/sh',
          '-c',
          PERSISTENT_ROOT,
          'sh',
          spec.root,
          spec.persistentRoot,
          scratch,
          rootContextOption(spec),
          bwrap,
        ];
        mounted = scratch;
      } else {
        rooted = ['/bin/sh', '-c', WRITABLE_ROOT, 'sh', spec.root, scratch, rootContextOption(spec), bwrap];
        mounted = join(scratch, 'root');
      }
    }
    // Declared devices the host has: a service that can do without one (TCG for /dev/kvm)
    // still starts where it is missing, and sees which it got.
    const devices = spec.devices.filter((d) => existsSync(d));
    const args = bwrapArgs(spec, {
      devices,
      ...(options.notifyDir === undefined ? {} : { notifyDir: options.notifyDir }),
      ...(mounted === undefined ? {} : { writableRoot: mounted }),
      infoFd: 3,
      selinux: selinuxEnabled(),
      // With SELinux on, a layer reaches the agent's local API, and the policy and the agent's
      // check (agent/dbus/dbus-access.ts) decide what it may call; with SELinux off it does
      // not: uids alone would let a root service control every layer.
      ...(selinuxEnabled() && existsSync(SYSTEM_BUS_DIR) ? { systemBusDir: SYSTEM_BUS_DIR } : {}),
    });
    // A supervised process lives as long as the service, so it is spawned directly rather
    // than through common/exec.ts run(), which waits for the program to finish.
    let child: ChildProcess;
    try {
      child = spawn(
        '/bin/sh',
        ['-c', ENTER_CGROUP, 'sh', cgroup?.path ?? '', unshare, ...REAPER, ...rooted, ...args],
        {
          stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
          detached: true,
        },
      );
    } catch (e) {
      if (cgroup !== undefined) await removeCgroup(cgroup.path);
      throw e;
    }
    return new SandboxRun(child, cgroup, limitsNotApplied, log);
  }
}

class SandboxRun implements Run {
  readonly up: Promise<void>;
  readonly namespacePid: Promise<number>;
  readonly exit: Promise<RunExit>;
  readonly limitsNotApplied: readonly string[];
  readonly #child: ChildProcess;
  readonly #cgroup: ServiceCgroup | undefined;
  readonly #log: ServiceLog;
  #exited = false;

  constructor(child: ChildProcess, cgroup: ServiceCgroup | undefined, notApplied: string[], log: ServiceLog) {
    this.#child = child;
    this.#cgroup = cgroup;
    this.#log = log;
    this.limitsNotApplied = notApplied;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => log.feed('stdout', c));
    child.stderr?.on('data', (c: string) => log.feed('stderr', c));
    // bwrap reports its PID 1's pid as seen in its own PID namespace (the reaper's), so
    // the host pid is found by walking the process tree: unshare → bwrap → sandbox PID 1.
    let sandboxUp: () => void = () => {};
    this.up = new Promise<void>((r) => {
      sandboxUp = r;
    });
    this.namespacePid = new Promise<number>((resolve) => {
      let text = '';
      const info = child.stdio[3] as NodeJS.ReadableStream | null;
      info?.setEncoding('utf8');
      info?.on('data', (c: string) => {
        text += c;
        if (/"child-pid"\s*:\s*\d+/.test(text) && child.pid !== undefined) {
          sandboxUp();
          void descendantAt(child.pid, 2).then((pid) => {
            if (pid !== undefined) resolve(pid);
          });
        }
      });
    });
    this.exit = new Promise<RunExit>((resolve) => {
      const ended = async (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#exited) return;
        this.#exited = true;
        log.flush();
        if (cgroup !== undefined) {
          await killCgroup(cgroup.path);
          await removeCgroup(cgroup.path);
        }
        resolve({ code, signal });
      };
      child.once('exit', (code, signal) => void ended(code, signal));
      child.once('error', (e) => {
        log.add('agent', `spawn failed: ${e.message}`);
        // A child that never got a pid emits no 'exit'.
        if (child.pid === undefined) void ended(127, null);
      });
    });
    log.add('agent', `started (pid ${child.pid ?? '?'})`);
  }

  get pid(): number | undefined {
    return this.#exited ? undefined : this.#child.pid;
  }

  /**
   * SIGKILLs the sandbox by killing the reaper namespace's PID 1 (bwrap's outer process):
   * the kernel then kills and reaps everything in that namespace, and unshare, our child,
   * exits on its own. Killing unshare first would orphan bwrap to the agent as a zombie.
   */
  async kill(): Promise<void> {
    const pid = this.#child.pid;
    if (pid !== undefined && !this.#exited) {
      for (const p of await childrenOf(pid)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      const late = await Promise.race([
        this.exit.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), KILL_GRACE_MS)),
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
    await this.exit;
  }

  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<{ exit: RunExit; killed: boolean }> {
    const child = this.#child;
    const cgroup = this.#cgroup;
    const signaled = new Set<number>();
    // Not to bwrap's outer process: it does not forward signals, and its death would
    // SIGKILL the sandbox (--die-with-parent) before the service could shut down cleanly.
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
          process.kill(p, signal);
        } catch {
          // exited meanwhile
        }
      }
    };
    await term();
    // Processes that appear after the first signal (a sandbox still being set up, a fork
    // racing the stop) get theirs too.
    const again = setInterval(() => void term(), 100);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exit.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    clearInterval(again);
    if (timedOut) {
      this.#log.add('agent', `still running ${timeoutMs} ms after ${signal}; SIGKILL`);
      await this.kill();
    }
    return { exit: await this.exit, killed: timedOut };
  }
}
