// The agent: boots (trust anchors, signed secure config, data directories), verifies and
// activates layers, supervises their services, serves the AgentApi, and shuts down in
// order. Process-level duties (signals, the final poweroff) are in agent/core/pid1.ts.
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareDataRoot } from '../layers/data-dirs.ts';
import { DataLabels } from '../layers/data-labels.ts';
import { LayerManager } from '../layers/layer-manager.ts';
import { PolicyKeeper } from '../layers/layer-policy.ts';
import { runModuleAction } from '../modules/module-run.ts';
import { isCgroup2, prepareCgroupRoot } from '../services/cgroup.ts';
import { selinuxEnabled } from '../services/sandbox.ts';
import { enablementFile, ServiceEnablement } from '../services/service-enablement.ts';
import { Supervisor } from '../services/supervisor.ts';
import type {
  AgentApi,
  AgentChange,
  AgentState,
  AgentStatus,
  LayerInfo,
  LogLine,
  ModuleRunOutput,
  ModuleRunRequest,
  SelinuxStatus,
  ServiceInfo,
} from './agent-api.ts';
import { type AgentConfig, inRoot } from './agent-config.ts';
import { AgentError } from './agent-error.ts';
import type { AgentLogger, LogFn } from './agent-log.ts';
import { mountPartitions, unmountPartitions } from './boot-mounts.ts';
import { descendantsOf } from '../services/proc-tree.ts';
import { CoreosUpdater, type DowngradeRequest } from './coreos-updater.ts';
import { lastGoodCrlPath, pushedCrlDir } from './crl-list.ts';
import { DenialCounter } from './avc-denials.ts';
import { ownContext, processContext, SELINUXFS, selinuxMode } from './selinux-state.ts';
import { loadTrust, readSecureConfig, type SecureConfig, type Trust, withPushedCrls } from './trust.ts';

/** Calls `say` as a write passes 25, 50, 75 and 100 %: progress without flooding the log. */
function quarterLog(say: (pct: number) => void): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const q = total === 0 ? 4 : Math.floor((done / total) * 4);
    if (q < last) last = 0; // the next install
    if (q > last) {
      last = q;
      say(q * 25);
    }
    if (q === 4) last = 0;
  };
}

export type PowerAction = 'poweroff' | 'reboot' | 'halt';

export interface ShutdownResult {
  action: PowerAction;
  /** Exit status in namespace mode: 0 poweroff/halt, 133 reboot (as systemd-nspawn reads it), 1 emergency. */
  code: number;
}

export interface AgentOptions {
  config: AgentConfig;
  mode: 'pid1' | 'namespace';
  logger: AgentLogger;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

export class Agent implements AgentApi {
  readonly config: AgentConfig;
  readonly mode: 'pid1' | 'namespace';
  readonly log: LogFn;
  readonly supervisor: Supervisor;
  readonly layers: LayerManager;
  /** A/B CoreOS slots: updates, the health gate of a trial boot (doc/how-to-update.md). */
  readonly coreos: CoreosUpdater;
  readonly #logger: AgentLogger;
  readonly #events = new EventEmitter();
  readonly #bootedAt = new Date().toISOString();
  #state: AgentState = 'booting';
  #brokerReached = false;
  /** Which services start on their own (`mway service enable|disable`), from the data partition. */
  #enablement: ServiceEnablement | undefined;
  /** The certificate partition's anchors and CRLs, as loaded at boot or reload. */
  #partitionTrust: Trust | undefined;
  /** What every check uses: the partition's trust with the pushed CRLs added (#refreshTrust). */
  #trust: Trust | undefined;
  #secure: SecureConfig | undefined;
  #secureStatus: AgentStatus['secureConfig'] = { verified: false, error: 'not read yet' };
  #crls: AgentStatus['crls'] = { count: 0, source: 'partition', problems: [] };
  readonly #warnings: string[] = [];
  readonly #stoppers: { name: string; stop: () => Promise<void> }[] = [];
  #shutdown: Promise<ShutdownResult> | undefined;
  #partitions: string[] = [];
  #resolveDone: (r: ShutdownResult) => void = () => {};
  /** SELinux, when the kernel runs it and this is the real PID 1 (doc/selinux.md). */
  readonly #selinux: { keeper: PolicyKeeper; denials: DenialCounter; labels?: DataLabels } | undefined;
  /** Resolves once the shutdown sequence has finished (services stopped, data synced). */
  readonly done: Promise<ShutdownResult>;

  constructor(options: AgentOptions) {
    this.config = options.config;
    this.mode = options.mode;
    this.#logger = options.logger;
    this.log = options.logger.log;
    this.#events.setMaxListeners(0);
    this.done = new Promise((r) => {
      this.#resolveDone = r;
    });
    const dataDir = this.path(this.config.dataDir);
    const cgroupRoot = this.path(this.config.cgroupRoot);
    // In namespace mode the host's policy is not ours to change: labels apply on MilkyWayLinux only.
    this.#selinux =
      this.mode === 'pid1' && selinuxMode() !== 'off'
        ? {
            keeper: new PolicyKeeper({
              policyDir: this.path(this.config.selinuxPolicyDir),
              workDir: join(this.path(this.config.stateDir), 'selinux'),
              selinuxfs: SELINUXFS,
              log: this.log,
            }),
            denials: new DenialCounter(),
          }
        : undefined;
    this.supervisor = new Supervisor({
      cgroupRoot: isCgroup2(join(cgroupRoot, '..')) ? cgroupRoot : undefined,
      runDir: join(this.path(this.config.stateDir), 'notify'),
      logDir: join(dataDir, 'logs'),
      logConfig: this.config.logs,
      emit: (c) => this.emit(c),
      log: this.log,
    });
    this.layers = new LayerManager({
      config: this.config,
      path: (p) => this.path(p),
      supervisor: this.supervisor,
      log: this.log,
      emit: (c) => this.emit(c),
      warn: (w) => this.warn(w),
      selinux: () => {
        const s = this.#selinux;
        return s?.labels === undefined ? undefined : { keeper: s.keeper, labels: s.labels };
      },
    });
    this.coreos = new CoreosUpdater({
      config: this.config.update,
      path: (p) => this.path(p),
      log: this.log,
      warn: (w) => this.warn(w),
      health: () => this.healthProblem(),
      trust: () => this.#trust,
      reboot: (reason) => void this.shutdown('reboot', reason),
      onWrite: quarterLog((pct) => this.log('info', `CoreOS update: inactive slot ${pct}% written`)),
    });
  }

  /** The peer link reached the broker during this boot (the gate's `update.requireBroker`). */
  noteBrokerReached(): void {
    this.#brokerReached = true;
  }

  /** What keeps this boot from being healthy, or null (the trial boot's health gate). */
  async healthProblem(): Promise<string | null> {
    if (this.#state === 'booting') return 'the agent is still booting';
    if (this.config.update.requireBroker && !this.#brokerReached)
      return this.config.control === undefined
        ? 'update.requireBroker is set but there is no peer link (no control section)'
        : 'the peer link has not reached the broker yet';
    if (!this.#secureStatus.verified)
      return `the secure config did not verify (${this.#secureStatus.error ?? 'unknown'})`;
    const refused = (await this.layers.list()).filter((l) => l.state === 'refused');
    if (refused.length > 0)
      return `layer ${refused.map((l) => `${l.name} refused (${l.error?.code ?? '?'})`).join(', ')}`;
    const services = this.supervisor.list();
    const failed = services.filter((x) => x.state === 'failed');
    if (failed.length > 0)
      return `service ${failed.map((x) => `${x.name} failed${x.error === undefined ? '' : `: ${x.error}`}`).join(', ')}`;
    const notReady = services.filter((x) => x.state !== 'running' && x.state !== 'exited');
    if (notReady.length > 0) return `service ${notReady.map((x) => `${x.name} ${x.state}`).join(', ')}`;
    return null;
  }

  /** Host path of a path inside the agent's root. */
  path(p: string): string {
    return inRoot(this.config, p);
  }

  emit(change: AgentChange): void {
    this.#events.emit('change', change);
  }

  #lastGoodCrls(): string {
    return lastGoodCrlPath(this.path(this.config.dataDir));
  }

  /**
   * The trust every check uses: the partition's (loaded at boot or reload) with the CRLs pushed
   * by `mway crl push` read again from the data partition, so a CRL the peer link stored a
   * moment ago is in force for the next layer, secure config or update verified here.
   */
  async #refreshTrust(partition: Trust): Promise<Trust> {
    const trust = await withPushedCrls(partition, pushedCrlDir(this.path(this.config.dataDir)));
    this.#reportCrls(trust);
    return trust;
  }

  /** Each CRL file refused goes into the status with its code; the list kept is said too. */
  #reportCrls(trust: Trust): void {
    const l = trust.crlList;
    if (l === undefined) return;
    const before = new Set(this.#crls.problems.map((p) => `${p.path} ${p.code}`));
    this.#crls = {
      count: trust.crls.length,
      source: l.source,
      pushed: l.pushed ?? 0,
      problems: l.problems,
    };
    for (const p of l.problems) {
      if (before.has(`${p.path} ${p.code}`)) continue;
      this.warn(
        l.source === 'partition+last-good'
          ? `CRL ${p.path} refused: ${p.code}: ${p.message}; keeping the last good CRL list (${l.fromLastGood} CRLs) in force with the files that passed`
          : `CRL ${p.path} refused: ${p.code}: ${p.message}`,
      );
    }
  }

  /** Logs a warning once and keeps it in `status().warnings`. */
  warn(message: string): void {
    if (this.#warnings.includes(message)) return;
    this.#warnings.push(message);
    this.log('warn', message);
  }

  get state(): AgentState {
    return this.#state;
  }

  /** Registers something to stop at shutdown (D-Bus service, peer link), last started first stopped. */
  onShutdown(name: string, stop: () => Promise<void>): void {
    this.#stoppers.push({ name, stop });
  }

  /**
   * The boot after PID 1's mounts: trust anchors, secure config, data directories, layers,
   * services. A failed trust or secure-config check leaves the agent up with no services,
   * reporting why; it never throws for that.
   */
  async boot(): Promise<void> {
    const c = this.config;
    const sel = this.#selinux;
    if (sel !== undefined) {
      sel.denials.start();
      this.log('info', `SELinux ${selinuxMode()}, the agent in ${ownContext() ?? '?'}`);
    }
    if (c.mounts.length > 0) {
      this.#partitions = await mountPartitions(c.mounts, (p) => this.path(p), this.log, sel !== undefined);
    }
    await mkdir(this.path(c.stateDir), { recursive: true, mode: 0o755 });
    const cgroupRoot = this.path(c.cgroupRoot);
    if (isCgroup2(join(cgroupRoot, '..'))) {
      const controllers = await prepareCgroupRoot(cgroupRoot);
      const missing = ['memory', 'pids', 'cpu'].filter((x) => !controllers.includes(x));
      if (missing.length > 0) {
        this.warn(
          `cgroup v2 at ${join(cgroupRoot, '..')} lacks the ${missing.join(', ')} controller(s): those service limits cannot be applied`,
        );
      }
    } else {
      this.warn(
        `no cgroup v2 at ${join(cgroupRoot, '..')}: services are not grouped in cgroups and no limits apply`,
      );
    }
    try {
      this.#partitionTrust = await loadTrust(this.path(c.trustAnchorsDir), {
        lastGoodCrls: this.#lastGoodCrls(),
      });
      this.#trust = await this.#refreshTrust(this.#partitionTrust);
      const { config, signer } = await readSecureConfig(this.path(c.secureConfig), this.#trust);
      this.#secure = config;
      this.#secureStatus = { verified: true, signer: `${signer.subject} (${signer.role})` };
      this.log('info', `secure config verified, signed by ${signer.subject} (${signer.role})`);
      if (this.mode === 'pid1' && config.hostname !== undefined) {
        const { writeFile } = await import('node:fs/promises');
        await writeFile('/proc/sys/kernel/hostname', config.hostname).catch((e: Error) =>
          this.warn(`cannot set the hostname: ${e.message}`),
        );
      }
    } catch (e) {
      const message = `${(e as { code?: string }).code ?? 'E_INTERNAL'}: ${(e as Error).message}`;
      this.#secureStatus = { verified: false, error: message };
      this.#state = 'degraded';
      this.log('error', `not starting any service: ${message}`);
      // A trial boot that cannot verify its secure config fails its gate and falls back.
      void this.coreos.start();
      return;
    }
    await this.#prepareData();
    await this.#selinux?.keeper.loaded();
    await this.layers.loadAll(this.#trust, this.#secure);
    this.#state = 'running';
    await this.supervisor.autostart();
    const failed = this.supervisor.list().filter((s) => s.state === 'failed');
    const refused = (await this.layers.list()).filter((l) => l.state === 'refused');
    if (failed.length > 0 || refused.length > 0) this.#state = 'degraded';
    this.log(
      'info',
      `boot done: ${this.supervisor.list().length} services (${failed.length} failed${
        failed.length === 0
          ? ''
          : `: ${failed.map((f) => `${f.name}: ${f.error ?? 'unknown reason'}`).join('; ')}`
      }), ${refused.length} layers refused`,
    );
    // The health gate of a trial boot runs beside the running system, never holding it up.
    void this.coreos.start();
  }

  /** The data partition's folders (labelled, with SELinux). */
  async #prepareData(): Promise<void> {
    const dataDir = this.path(this.config.dataDir);
    if (this.#selinux !== undefined) this.#selinux.labels ??= await DataLabels.open(dataDir);
    await prepareDataRoot(dataDir, this.#selinux?.labels);
    const file = enablementFile(dataDir);
    this.#enablement = await ServiceEnablement.open(file).catch((e: Error) => {
      this.warn(`${e.message}: starting every service (mway service disable again what should stay off)`);
      return ServiceEnablement.empty(file);
    });
    this.supervisor.setEnablement((n) => this.#enablement?.isEnabled(n) ?? true);
  }

  #selinuxStatus(): SelinuxStatus {
    const s = this.#selinux;
    if (s === undefined) return { mode: this.mode === 'pid1' ? selinuxMode() : 'off', denials: 0 };
    s.denials.drain();
    const loaded = s.keeper.current;
    const sha256 = s.keeper.digest();
    const context = ownContext();
    return {
      mode: selinuxMode(),
      ...(loaded === undefined || sha256 === undefined
        ? {}
        : { policy: { version: loaded.version, format: 33, sha256, layers: loaded.layers.length } }),
      denials: s.denials.denials,
      ...(s.denials.unseen === 0 ? {} : { unseen: s.denials.unseen }),
      ...(s.denials.last === undefined ? {} : { lastDenial: s.denials.last }),
      ...(context === undefined ? {} : { context }),
    };
  }

  /** Counts a denial of the agent's own (a D-Bus access check). */
  selinuxDenied(text: string): void {
    this.#selinux?.denials.add(text);
  }

  /** SIGHUP: re-read the secure config and layer storage; start what is new. */
  async reload(): Promise<void> {
    if (this.#shutdown !== undefined) return;
    this.log('info', 'reloading config and layers');
    try {
      const partition = await loadTrust(this.path(this.config.trustAnchorsDir), {
        lastGoodCrls: this.#lastGoodCrls(),
      });
      const trust = await this.#refreshTrust(partition);
      const { config, signer } = await readSecureConfig(this.path(this.config.secureConfig), trust);
      const first = this.#secure === undefined;
      this.#partitionTrust = partition;
      this.#trust = trust;
      this.#secure = config;
      this.#secureStatus = { verified: true, signer: `${signer.subject} (${signer.role})` };
      this.log('info', `secure config verified, signed by ${signer.subject} (${signer.role})`);
      if (first) await this.#prepareData();
      await this.layers.loadAll(trust, config);
      await this.supervisor.autostart();
      this.#state = this.supervisor.list().some((s) => s.state === 'failed') ? 'degraded' : 'running';
    } catch (e) {
      this.log('error', `reload failed, keeping the running state: ${(e as Error).message}`);
    }
  }

  // --- AgentApi -------------------------------------------------------------------------

  async status(): Promise<AgentStatus> {
    const services = this.supervisor.list();
    const layers = await this.layers.list();
    return {
      state: this.#state,
      mode: this.mode,
      bootedAt: this.#bootedAt,
      secureConfig: this.#secureStatus,
      crls: this.#crls,
      layers: {
        active: layers.filter((l) => l.state === 'active').length,
        refused: layers.filter((l) => l.state === 'refused').length,
      },
      services: {
        total: services.length,
        running: services.filter((s) => s.state === 'running').length,
        failed: services.filter((s) => s.state === 'failed').length,
        problems: services
          .filter((s) => s.state === 'failed' || s.state === 'backoff')
          .map((s) => ({
            name: s.name,
            state: s.state,
            error: s.error ?? 'unknown reason',
            lastOutput: s.lastOutput ?? [],
          })),
      },
      selinux: this.#selinuxStatus(),
      warnings: [...this.#warnings],
      coreos: await this.coreos.status(),
    };
  }

  listLayers(): Promise<LayerInfo[]> {
    return this.layers.list();
  }

  async listServices(): Promise<ServiceInfo[]> {
    return Promise.all(this.supervisor.list().map((s) => this.#withRunningContexts(s)));
  }

  async getService(name: string): Promise<ServiceInfo> {
    return this.#withRunningContexts(this.supervisor.get(name).info());
  }

  /**
   * The kernel's word on a running service's processes beside the label the agent gave it:
   * the contexts of every process below its sandbox but the agent's own (sh, unshare, bwrap).
   */
  async #withRunningContexts(info: ServiceInfo): Promise<ServiceInfo> {
    if (this.#selinux === undefined || info.selinux === undefined || info.pid === undefined) return info;
    const own = ownContext();
    const seen = new Set<string>();
    for (const pid of await descendantsOf(info.pid)) {
      const c = await processContext(pid);
      if (c !== undefined && c !== own) seen.add(c);
    }
    return { ...info, selinux: { ...info.selinux, running: [...seen].sort() } };
  }

  #refuseWhenStopping(what: string): void {
    if (this.#shutdown !== undefined)
      throw new AgentError('E_SHUTTING_DOWN', `Cannot ${what}: the agent is shutting down`);
  }

  async startService(name: string): Promise<void> {
    this.#refuseWhenStopping(`start ${name}`);
    this.supervisor.get(name);
    await this.supervisor.startAll([name]);
    const unit = this.supervisor.get(name);
    if (unit.state === 'failed') {
      throw new AgentError('E_SERVICE_FAILED', `Service ${name} failed to start: ${unit.error ?? 'unknown'}`);
    }
  }

  async stopService(name: string): Promise<void> {
    this.supervisor.get(name);
    await this.supervisor.stopAll([name, ...this.supervisor.dependents(name)]);
  }

  async setServiceEnabled(name: string, enabled: boolean): Promise<{ enabled: boolean; changed: boolean }> {
    this.#refuseWhenStopping(`${enabled ? 'enable' : 'disable'} ${name}`);
    this.supervisor.get(name);
    if (this.#enablement === undefined)
      throw new AgentError(
        'E_SECURE_CONFIG',
        `Cannot ${enabled ? 'enable' : 'disable'} ${name}: the data partition is not ready`,
      );
    const changed = await this.#enablement.set(name, enabled);
    if (changed) this.log('info', `service ${name} ${enabled ? 'enabled' : 'disabled'}`);
    return { enabled, changed };
  }

  async restartService(name: string): Promise<void> {
    await this.stopService(name);
    await this.startService(name);
  }

  async logs(name: string, options: { lines?: number }): Promise<LogLine[]> {
    return this.supervisor.get(name).ctx.log.tail(options.lines ?? 100);
  }

  async installLayer(mwlPath: string): Promise<LayerInfo> {
    this.#refuseWhenStopping('install a layer');
    if (this.#trust === undefined || this.#secure === undefined) {
      throw new AgentError(
        'E_SECURE_CONFIG',
        `Cannot install a layer: the secure config is not verified (${this.#secureStatus.error ?? ''})`,
      );
    }
    if (this.#partitionTrust !== undefined) this.#trust = await this.#refreshTrust(this.#partitionTrust);
    return this.layers.install(mwlPath, this.#trust, this.#secure);
  }

  async updateCoreos(bundlePath: string, downgrade?: DowngradeRequest): Promise<Record<string, unknown>> {
    this.#refuseWhenStopping('update CoreOS');
    if (this.#partitionTrust !== undefined) this.#trust = await this.#refreshTrust(this.#partitionTrust);
    return this.coreos.install(bundlePath, downgrade);
  }

  async checkCoreosBundleHead(head: Uint8Array, downgrade?: DowngradeRequest): Promise<void> {
    this.#refuseWhenStopping('update CoreOS');
    if (this.#partitionTrust !== undefined) this.#trust = await this.#refreshTrust(this.#partitionTrust);
    await this.coreos.checkHead(head, downgrade);
  }

  async rollbackCoreos(): Promise<Record<string, unknown>> {
    this.#refuseWhenStopping('roll CoreOS back');
    return this.coreos.rollback();
  }

  async cancelCoreosUpdate(): Promise<Record<string, unknown>> {
    return this.coreos.cancel();
  }

  async removeLayer(name: string): Promise<void> {
    this.#refuseWhenStopping('remove a layer');
    await this.layers.remove(name);
  }

  async runModule(
    req: ModuleRunRequest,
  ): Promise<{ output: ModuleRunOutput; failure?: { code: string; message: string } }> {
    this.#refuseWhenStopping('run a module action');
    const m = this.layers.module(req.module);
    if (m === undefined) {
      const problem = this.layers.problemOf(req.module);
      if (problem !== undefined) {
        throw new AgentError(
          'E_MODULE_REFUSED',
          `Module ${req.module} is installed but refused here: ${problem.code}: ${problem.message}`,
          { details: { code: problem.code } },
        );
      }
      throw new AgentError('E_MODULE_UNKNOWN', `No active module ${req.module} on this peer`);
    }
    return runModuleAction({ ...m, request: req, selinux: selinuxEnabled() });
  }

  async putSecrets(layerOrGroup: string, values: Record<string, Uint8Array>): Promise<void> {
    if (!NAME.test(layerOrGroup))
      throw new AgentError('E_BAD_NAME', `Invalid layer or group name ${JSON.stringify(layerOrGroup)}`);
    const secure = this.#secure;
    const dataDir = this.path(this.config.dataDir);
    // A layer's secrets are its own: 0600 owned by the uid its services run as (its private
    // data's owner: the layer's uid, or root when all its services run as root), in a 0700 directory. A
    // group's secrets are shared by the layers of that group, which run with their own uids
    // and the group's gid, so there the gid is the boundary: 0640 root:gid in a 0750 directory.
    let dir: string;
    let owner: { uid: number; gid: number };
    const shared = secure?.groups[layerOrGroup] !== undefined;
    if (shared) {
      dir = join(dataDir, 'group', layerOrGroup, 'secrets');
      owner = { uid: 0, gid: secure?.groups[layerOrGroup]?.gid ?? 0 };
    } else if (this.layers.has(layerOrGroup)) {
      dir = join(dataDir, 'secure', layerOrGroup, 'secrets');
      owner = this.layers.dataOwnerOf(layerOrGroup) ?? { uid: 0, gid: 0 };
    } else throw new AgentError('E_LAYER_UNKNOWN', `No layer or group named ${layerOrGroup}`);
    const fileMode = shared ? 0o640 : 0o600;
    const labels = this.#selinux?.labels;
    const ids = this.layers.idsOf(layerOrGroup);
    if (!shared && labels !== undefined && ids !== undefined) {
      // A layer's secrets carry its secret type and pair: the layer reads them, no other can.
      const { layerObjectContext } = await import('../../layers/index.ts');
      await labels.ensure(
        dataDir,
        join('secure', layerOrGroup, 'secrets'),
        layerObjectContext(layerOrGroup, 'secret', ids.categories),
        {
          mode: 0o700,
          uid: owner.uid,
          gid: owner.gid,
          recursive: true,
        },
      );
    } else await mkdir(dir, { recursive: true, mode: shared ? 0o750 : 0o700 });
    const { chmod, chown, rename, open } = await import('node:fs/promises');
    await chown(dir, owner.uid, owner.gid);
    await chmod(dir, shared ? 0o750 : 0o700);
    for (const [key, value] of Object.entries(values)) {
      if (!/^[A-Za-z0-9_.-]{1,128}$/.test(key) || key.startsWith('.')) {
        throw new AgentError('E_BAD_NAME', `Invalid secret name ${JSON.stringify(key)}`);
      }
      const tmp = join(dir, `.${key}.tmp`);
      const fh = await open(tmp, 'w', fileMode);
      try {
        await fh.writeFile(value);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chown(tmp, owner.uid, owner.gid);
      await rename(tmp, join(dir, key));
    }
  }

  async reboot(): Promise<void> {
    void this.shutdown('reboot', 'reboot requested');
  }

  async poweroff(): Promise<void> {
    void this.shutdown('poweroff', 'poweroff requested');
  }

  onChange(listener: (change: AgentChange) => void): () => void {
    this.#events.on('change', listener);
    return () => this.#events.off('change', listener);
  }

  // --- shutdown -------------------------------------------------------------------------

  /**
   * The orderly shutdown: local API and peer link, services in reverse dependency order,
   * anything left (SIGTERM, then SIGKILL), layers unmounted, sync. Idempotent: a second
   * request joins the first. Never throws.
   */
  shutdown(action: PowerAction, reason: string, emergency = false): Promise<ShutdownResult> {
    if (this.#shutdown !== undefined) return this.#shutdown;
    this.#state = emergency ? 'emergency' : 'stopping';
    this.coreos.stop();
    this.log(emergency ? 'error' : 'info', `shutting down (${action}): ${reason}`);
    this.#shutdown = this.#runShutdown(action, emergency);
    void this.#shutdown.then((r) => this.#resolveDone(r));
    return this.#shutdown;
  }

  async #runShutdown(action: PowerAction, emergency: boolean): Promise<ShutdownResult> {
    const step = async (what: string, fn: () => Promise<unknown>, ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise((_, rej) => {
            timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
          }),
        ]);
      } catch (e) {
        this.log('warn', `shutdown: ${what}: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    };
    for (const s of [...this.#stoppers].reverse()) await step(`stop ${s.name}`, s.stop, 5000);
    const longest = Math.max(0, ...this.supervisor.units().map((u) => u.spec.timeoutStopSec * 1000));
    await step('stop services', () => this.supervisor.stopAll(), longest * 4 + 5000);
    await step('stop leftover processes', () => killLeftovers(this.log), 15_000);
    if (this.#selinux !== undefined) {
      // The boot's count, once no service is left to add to it, on the console for whoever
      // keeps it (a QEMU test compares it with the kernel's own lines). Never the last denial's
      // text: the console would show it as one more.
      const s = this.#selinuxStatus();
      this.log(
        'info',
        `SELinux ${s.mode}: ${s.denials} AVC denials since boot${s.unseen ? `, ${s.unseen} audit records unseen` : ''}`,
      );
    }
    await step('deactivate layers', () => this.layers.deactivateAll(), 30_000);
    for (const u of this.supervisor.units()) u.ctx.log.close();
    await step('sync', () => syncAll(), 15_000);
    await step('unmount partitions', () => unmountPartitions(this.#partitions, this.log), 60_000);
    this.log('info', `shutdown done (${action})`);
    this.#logger.close();
    const code = emergency ? 1 : action === 'reboot' ? 133 : 0;
    return { action, code };
  }
}

async function syncAll(): Promise<void> {
  const { findTool, run } = await import('../../common/index.ts');
  // CoreOS may carry sync only as a busybox applet.
  if ((await findTool('sync')) !== undefined)
    await run('sync', [], { timeout: 15_000, reject: false }).catch(() => {});
  else await run('busybox', ['sync'], { timeout: 15_000, reject: false }).catch(() => {});
}

/**
 * As PID 1, everything still running is ours to end: SIGTERM to all but ourselves, then
 * SIGKILL after 10 s (Talos's order). Our own helpers (awaited children) are included.
 */
async function killLeftovers(log: LogFn): Promise<void> {
  if (process.pid !== 1) return;
  const { readdir, readFile } = await import('node:fs/promises');
  // User processes only: kernel threads (PF_KTHREAD, or children of kthreadd) ignore
  // signals, and zombies are already dead.
  const PF_KTHREAD = 0x00200000;
  const others = async () => {
    const out: number[] = [];
    for (const d of await readdir('/proc')) {
      if (!/^\d+$/.test(d) || d === '1') continue;
      const st = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
      const close = st.lastIndexOf(')');
      if (close < 0) continue;
      // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags …
      const f = st.slice(close + 2).split(' ');
      const state = f[0];
      const ppid = Number(f[1]);
      const flags = Number(f[6]);
      if (state === 'Z' || ppid === 2 || d === '2' || (flags & PF_KTHREAD) !== 0) continue;
      out.push(Number(d));
    }
    return out;
  };
  const send = async (signal: NodeJS.Signals) => {
    for (const pid of await others()) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone, or a kernel thread
      }
    }
  };
  const first = await others();
  if (first.length === 0) return;
  const describe = async (pids: number[]) => {
    const out: string[] = [];
    for (const p of pids.slice(0, 10)) {
      const st = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
      // "pid (comm) state ppid …": comm may contain spaces, so cut at the last ')'.
      const close = st.lastIndexOf(')');
      out.push(`${p} ${st.slice(st.indexOf('(') + 1, close)} ${st.slice(close + 2, close + 3)}`);
    }
    return out.join(', ');
  };
  log('info', `sending SIGTERM to ${first.length} leftover processes (${await describe(first)})`);
  await send('SIGTERM');
  const end = Date.now() + 10_000;
  while (Date.now() < end && (await others()).length > 0) await new Promise((r) => setTimeout(r, 100));
  const left = await others();
  if (left.length > 0) {
    log('warn', `sending SIGKILL to ${left.length} processes still running`);
    await send('SIGKILL');
  }
}
