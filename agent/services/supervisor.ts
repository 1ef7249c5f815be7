// The set of services: starts them in order (each as soon as what it is ordered after has
// settled, independent ones in parallel) and stops them in reverse order. Ordering (after)
// and requirement (requires, wants) are separate settings, as in systemd.unit(5).
import type { AgentChange, ServiceInfo } from '../core/agent-api.ts';
import type { LogFn } from '../core/agent-log.ts';
import type { LogConfig } from '../core/agent-config.ts';
import { AgentError } from '../core/agent-error.ts';
import { FailureReporter } from './failure-report.ts';
import { conditionsOf } from './readiness/conditions.ts';
import type { Runner } from './runner.ts';
import { SandboxRunner } from './sandbox-runner.ts';
import { ServiceLog } from './service-log.ts';
import type { UnitSpec } from './unit-spec.ts';
import { ServiceUnit } from './service-unit.ts';

export interface SupervisorOptions {
  cgroupRoot: string | undefined;
  runDir: string;
  /** Directory for log files; undefined keeps logs in memory only. */
  logDir: string | undefined;
  logConfig: LogConfig;
  emit: (change: AgentChange) => void;
  log: LogFn;
  /** What runs a service (default: the bubblewrap runner); tests pass a fake one. */
  runner?: (spec: UnitSpec, log: ServiceLog) => Runner;
}

export class Supervisor {
  readonly #units = new Map<string, ServiceUnit>();
  readonly #options: SupervisorOptions;
  /** Says on the agent's log (console, /dev/kmsg) why a service failed or restarts. */
  readonly #reporter: FailureReporter;
  /** Whether a service starts on its own (service-enablement.ts); all do until told. */
  #enabled: (name: string) => boolean = () => true;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#reporter = new FailureReporter(options.log);
  }

  add(spec: UnitSpec): ServiceUnit {
    if (this.#units.has(spec.name)) {
      throw new AgentError(
        'E_SERVICE_EXISTS',
        `Cannot add service ${spec.name}: a service of that name exists`,
      );
    }
    const o = this.#options;
    const log = new ServiceLog(spec.name, o.logConfig, o.logDir);
    const unit = new ServiceUnit(spec, {
      runner:
        o.runner?.(spec, log) ?? new SandboxRunner(spec, { cgroupRoot: o.cgroupRoot, log, runDir: o.runDir }),
      readiness: () => conditionsOf(spec, o.runDir),
      log,
      changed: (u) => {
        this.#reporter.changed(u.info());
        o.emit({ kind: 'service', name: u.spec.name, state: u.state });
      },
    });
    this.#units.set(spec.name, unit);
    return unit;
  }

  /** Stops and forgets a service. */
  async remove(name: string): Promise<void> {
    const unit = this.get(name);
    await unit.stop();
    unit.ctx.log.close();
    this.#units.delete(name);
  }

  get(name: string): ServiceUnit {
    const unit = this.#units.get(name);
    if (unit === undefined)
      throw new AgentError('E_SERVICE_UNKNOWN', `No service named ${name}`, { path: name });
    return unit;
  }

  has(name: string): boolean {
    return this.#units.has(name);
  }

  list(): ServiceInfo[] {
    return [...this.#units.values()].map((u) => u.info());
  }

  units(): ServiceUnit[] {
    return [...this.#units.values()];
  }

  /**
   * Starts `names` (default: all) with what they require or want (systemd pulls both in),
   * each once the services it is ordered after (`after`) that are starting have settled,
   * independent ones in parallel. A service ordered after a requirement that failed fails
   * too, without starting; one in an ordering cycle fails. Resolves when every start has
   * settled; never rejects.
   */
  async startAll(names?: string[]): Promise<void> {
    const job = this.#pulledIn(names ?? [...this.#units.keys()]);
    const cycles = orderingCycles(job, (n) => this.#units.get(n)?.spec.after ?? []);
    const started = new Map<string, Promise<void>>();
    const startOne = (name: string): Promise<void> => {
      const known = started.get(name);
      if (known !== undefined) return known;
      const unit = this.#units.get(name) as ServiceUnit;
      const p = (async () => {
        const cycle = cycles.get(name);
        if (cycle !== undefined) return unit.refuse(`ordering cycle: ${cycle.join(' → ')}`);
        const before = unit.spec.after.filter((a) => job.has(a) || this.#units.get(a)?.busy === true);
        if (before.length > 0) unit.markWaiting();
        await Promise.all(before.map((a) => (job.has(a) ? startOne(a) : this.#units.get(a)?.settled())));
        for (const r of unit.spec.requires) {
          const req = this.#units.get(r);
          if (req === undefined) return unit.refuse(`requirement failed: no service named ${r}`);
          if (unit.spec.after.includes(r) && req.state !== 'running' && req.state !== 'exited')
            return unit.refuse(
              `requirement failed: ${r} is ${req.state}${req.error === undefined ? '' : `: ${req.error}`}`,
            );
        }
        await unit.start().catch(() => {});
      })();
      started.set(name, p);
      return p;
    };
    await Promise.all([...job].map(startOne));
  }

  /** Where `autostart` asks whether a service is enabled. */
  setEnablement(enabled: (name: string) => boolean): void {
    this.#enabled = enabled;
  }

  /**
   * startAll for what starts on its own — boot, reload, a layer installed: `names` (default
   * all) less the disabled services. An explicit start (startAll) starts a disabled one too.
   */
  autostart(names?: string[]): Promise<void> {
    return this.startAll((names ?? [...this.#units.keys()]).filter((n) => this.#enabled(n)));
  }

  /** `names` and everything they require or want, transitively (unknown names left out). */
  #pulledIn(names: string[]): Set<string> {
    const job = new Set<string>();
    const queue = [...names];
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const unit = this.#units.get(name);
      if (unit === undefined || job.has(name)) continue;
      job.add(name);
      queue.push(...unit.spec.requires, ...unit.spec.wants);
    }
    return job;
  }

  /** Names that (transitively) require `name`. */
  dependents(name: string): string[] {
    const out = new Set<string>();
    const walk = (n: string) => {
      for (const u of this.#units.values()) {
        if (u.spec.requires.includes(n) && !out.has(u.spec.name)) {
          out.add(u.spec.name);
          walk(u.spec.name);
        }
      }
    };
    walk(name);
    return [...out];
  }

  /**
   * Stops `names` (default: all) in reverse order: a service stops only after every service
   * of the set ordered after it (`after`) has stopped.
   */
  async stopAll(names?: string[]): Promise<void> {
    const set = new Set(names ?? this.#units.keys());
    const stopped = new Map<string, Promise<void>>();
    const stopOne = (name: string): Promise<void> => {
      const known = stopped.get(name);
      if (known !== undefined) return known;
      const unit = this.#units.get(name);
      if (unit === undefined) return Promise.resolve();
      // Placeholder first so a cycle cannot recurse forever.
      stopped.set(name, Promise.resolve());
      const before = [...this.#units.values()]
        .filter((u) => set.has(u.spec.name) && u.spec.after.includes(name))
        .map((u) => stopOne(u.spec.name));
      const p = Promise.all(before).then(() => unit.stop());
      stopped.set(name, p);
      return p;
    };
    await Promise.all([...set].map((n) => stopOne(n).catch(() => {})));
  }
}

/**
 * The services of `job` on a cycle of `after` edges inside it, each with its cycle: they
 * could never start (the manifest and resolve() refuse such cycles; this is the agent's
 * own guard). Iterative, so no service graph can exhaust the stack.
 */
export function orderingCycles(
  job: Set<string>,
  after: (name: string) => readonly string[],
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  for (const root of job) {
    if (state.has(root)) continue;
    const stack: { name: string; next: number }[] = [{ name: root, next: 0 }];
    state.set(root, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { name: string; next: number };
      const edges = after(top.name).filter((a) => job.has(a));
      const a = edges[top.next++];
      if (a === undefined) {
        state.set(top.name, 'done');
        stack.pop();
      } else if (state.get(a) === 'open') {
        const from = stack.findIndex((f) => f.name === a);
        const cycle = [...stack.slice(from).map((f) => f.name), a];
        for (const n of cycle) if (!out.has(n)) out.set(n, cycle);
      } else if (!state.has(a)) {
        state.set(a, 'open');
        stack.push({ name: a, next: 0 });
      }
    }
  }
  return out;
}
