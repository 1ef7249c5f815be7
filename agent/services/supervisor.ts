// The set of services: starts them in dependency order (each as soon as what it requires
// is ready, independent ones in parallel) and stops them in reverse order.
import type { AgentChange, ServiceInfo } from '../core/agent-api.ts';
import type { LogConfig } from '../core/agent-config.ts';
import { AgentError } from '../core/agent-error.ts';
import { conditionsOf } from './readiness/conditions.ts';
import { SandboxRunner } from './sandbox-runner.ts';
import { ServiceLog } from './service-log.ts';
import type { ServiceSpec } from './service-spec.ts';
import { ServiceUnit } from './service-unit.ts';

export interface SupervisorOptions {
  cgroupRoot: string | undefined;
  runDir: string;
  /** Directory for log files; undefined keeps logs in memory only. */
  logDir: string | undefined;
  logConfig: LogConfig;
  emit: (change: AgentChange) => void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class Supervisor {
  readonly #units = new Map<string, ServiceUnit>();
  readonly #options: SupervisorOptions;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  add(spec: ServiceSpec): ServiceUnit {
    if (this.#units.has(spec.name)) {
      throw new AgentError(
        'E_SERVICE_EXISTS',
        `Cannot add service ${spec.name}: a service of that name exists`,
      );
    }
    const o = this.#options;
    const log = new ServiceLog(spec.name, o.logConfig, o.logDir);
    const unit = new ServiceUnit(spec, {
      runner: new SandboxRunner(spec, { cgroupRoot: o.cgroupRoot, log }),
      readiness: () => conditionsOf(spec, o.runDir),
      log,
      changed: (u) => o.emit({ kind: 'service', name: u.spec.name, state: u.state }),
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
   * Starts `names` (default: all) and what they require, each once its requirements are
   * ready. A service whose requirement fails is marked failed. Resolves when every start
   * has settled; never rejects.
   */
  async startAll(names?: string[]): Promise<void> {
    const started = new Map<string, Promise<void>>();
    const visiting = new Set<string>();
    const startOne = (name: string): Promise<void> => {
      const known = started.get(name);
      if (known !== undefined) return known;
      if (visiting.has(name)) {
        return Promise.reject(new AgentError('E_SERVICE_CYCLE', `Dependency cycle through ${name}`));
      }
      visiting.add(name);
      const unit = this.#units.get(name);
      let p: Promise<void>;
      if (unit === undefined) {
        p = Promise.reject(new AgentError('E_SERVICE_UNKNOWN', `No service named ${name}`));
      } else {
        if (unit.spec.requires.length > 0) unit.markWaiting();
        const deps = unit.spec.requires.map((d) => startOne(d));
        p = Promise.all(deps).then(
          () => unit.start(),
          (e: Error) => {
            unit.error = `requirement failed: ${e.message}`;
            unit.state = 'failed';
            this.#options.emit({ kind: 'service', name, state: 'failed' });
            throw e;
          },
        );
      }
      visiting.delete(name);
      started.set(name, p);
      return p;
    };
    const all = (names ?? [...this.#units.keys()]).map((n) => startOne(n).catch(() => {}));
    await Promise.all(all);
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
   * Stops `names` (default: all) in reverse dependency order: a service stops only after
   * every service requiring it has stopped.
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
        .filter((u) => set.has(u.spec.name) && u.spec.requires.includes(name))
        .map((u) => stopOne(u.spec.name));
      const p = Promise.all(before).then(() => unit.stop());
      stopped.set(name, p);
      return p;
    };
    await Promise.all([...set].map((n) => stopOne(n).catch(() => {})));
  }
}
