// The installed layers: verifies each (chain, role, manifest, payload digest) through
// layers/ verifyLayer, activates the payload (agent/layers/layer-activation.ts), mounts each app's
// overlay root in the resolver's order and turns the manifest's services into supervised
// services. A refused layer is reported and the others go on. Install and remove at
// runtime go through staging (agent/layers/layer-store.ts) so a crash leaves the old state.
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MilkyWayError } from '../../common/index.ts';
import { canonicalJson } from '../../keys/index.ts';
import type { AgentChange, LayerInfo } from '../core/agent-api.ts';
import type { AgentConfig } from '../core/agent-config.ts';
import { AgentError } from '../core/agent-error.ts';
import type { LogFn } from '../core/agent-log.ts';
import type { SecureConfig, Trust } from '../core/trust.ts';
import { moduleSummary } from '../modules/module-summary.ts';
import { type Placement, unitSpec } from '../services/placement.ts';
import type { Supervisor } from '../services/supervisor.ts';
import type { UnitSpec } from '../services/unit-spec.ts';
import { type DataLabelling, grantedGroups, layerDataBinds, privateDataOwner } from './data-dirs.ts';
import type { DataLabels } from './data-labels.ts';
import {
  type Activation,
  activatePayload,
  deactivatePayload,
  kernelVerityAvailable,
} from './layer-activation.ts';
import type { PolicyKeeper } from './layer-policy.ts';
import { cleanStaging, commit, listStored, privateCopy, stage, unstore } from './layer-store.ts';
import {
  type LayersModule,
  loadLayersModule,
  type Manifest,
  rootHashOf,
  type Verified,
} from './layers-contract.ts';
import { mountAppRoot, mountSkeletonTmpfs, unmountAppRoot, unmountOrThrow } from './overlay-root.ts';
import { pool } from './pool.ts';
import { type LayerIds, ownerOf, UidTable } from './uid-table.ts';
import { groupVolumeBinds, volumeBinds } from './volumes.ts';
import { persistentRoot } from './writable-root.ts';

/** Apps and modules run in a root of their own; libraries only lie under one. */
function hasRoot(e: Entry): boolean {
  const kind = e.verified?.manifest.kind;
  return kind === 'app' || kind === 'module';
}

/** Layers verified and mounted at once during boot. */
const BOOT_CONCURRENCY = 4;

export interface LayerManagerOptions {
  config: AgentConfig;
  path: (p: string) => string;
  supervisor: Supervisor;
  log: LogFn;
  emit: (c: AgentChange) => void;
  warn: (message: string) => void;
  /** With SELinux on (a real PID 1 whose kernel runs it): the policy and the data labels. */
  selinux?: () => LayerSelinux | undefined;
}

export interface LayerSelinux {
  keeper: PolicyKeeper;
  labels: DataLabels;
}

interface Entry {
  info: LayerInfo;
  verified?: Verified;
  activation?: Activation;
  /** Mounted root (apps and modules). */
  rootMount?: string;
  /** Where the layer's processes run: its root, data binds, ids and SELinux contexts (apps and modules). */
  placement?: Placement;
  file: string;
  /**
   * The verified manifest's canonical JSON: what says a layer offered again is this very one
   * (the manifest binds payload digest, verity root hash and policy digest).
   */
  manifest?: string;
}

export class LayerManager {
  readonly #o: LayerManagerOptions;
  readonly #entries = new Map<string, Entry>();
  #uids: UidTable | undefined;
  #skeleton = false;
  /** The secure config the app roots were last mounted with (a failed remove remounts one). */
  #secure: SecureConfig | undefined;
  // One install/remove/load at a time: they change the same mounts and files.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: LayerManagerOptions) {
    this.#o = options;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => {});
    return p;
  }

  get #layersDir(): string {
    return this.#o.path(this.#o.config.layersDir);
  }
  get #stateDir(): string {
    return this.#o.path(this.#o.config.stateDir);
  }

  has(name: string): boolean {
    return this.#entries.get(name)?.info.state === 'active';
  }

  /** uid, gid and category pair of an active layer. */
  idsOf(name: string): LayerIds | undefined {
    return this.#uids === undefined || !this.has(name) ? undefined : this.#uids.get(name);
  }

  /**
   * An active module's verified manifest and where its actions run (its mounted root, data
   * binds, ids, SELinux contexts); undefined when no module of that name is active.
   */
  module(name: string): { manifest: Manifest; placement: Placement } | undefined {
    const e = this.#entries.get(name);
    if (e?.info.state !== 'active' || e.verified?.manifest.kind !== 'module' || e.placement === undefined)
      return undefined;
    return { manifest: e.verified.manifest, placement: e.placement };
  }

  /** Why a layer of that name is not active (its refusal), if it is installed at all. */
  problemOf(name: string): LayerInfo['error'] | undefined {
    return this.#entries.get(name)?.info.error;
  }

  ownerOf(name: string): { uid: number; gid: number } | undefined {
    return this.#uids === undefined || !this.has(name) ? undefined : ownerOf(this.#uids, name);
  }

  /** Who owns the layer's private data: the uid its services run as (privateDataOwner). */
  dataOwnerOf(name: string): { uid: number; gid: number } | undefined {
    const owner = this.ownerOf(name);
    const services = this.#entries.get(name)?.verified?.manifest.services;
    return owner === undefined || services === undefined ? owner : privateDataOwner(services, owner);
  }

  async list(): Promise<LayerInfo[]> {
    return [...this.#entries.values()].map((e) => e.info);
  }

  #verityMode(): 'kernel' | 'userspace' | undefined {
    if (kernelVerityAvailable()) return 'kernel';
    return this.#o.config.allowUserspaceVerity ? 'userspace' : undefined;
  }

  async #verify(mod: LayersModule, file: string, trust: Trust, secure: SecureConfig): Promise<Verified> {
    const mode = this.#verityMode();
    if (mode === undefined) {
      throw new AgentError(
        'E_LAYER_NO_VERITY',
        'Cannot activate layers: no device-mapper in this kernel and allowUserspaceVerity is false',
        { path: file },
      );
    }
    // With kernel dm-verity every read is checked at runtime. Without it, every block is
    // checked now, on a private copy that is then what gets mounted: a write to the layers
    // partition after this check cannot reach the running layer (it fails the next boot's).
    // A file whose tar framing or manifest does not even parse is refused before the copy (the
    // headers and manifest only, ~0.2 ms): on a partition full of junk *.mwl the copies were
    // most of the boot. What passes is still copied, and the copy is what gets verified.
    if (mode === 'userspace') await mod.readLayer(file, { followSymlinks: false });
    const path = mode === 'userspace' ? await privateCopy(this.#stateDir, nameOf(file), file) : file;
    let v: Verified;
    try {
      v = await mod.verifyLayer(path, {
        anchors: trust.anchors,
        crls: trust.crls,
        verity: mode === 'userspace',
        followSymlinks: false,
      });
    } catch (e) {
      if (path !== file) await rm(path, { force: true });
      throw e;
    }
    if (secure.allowLayers !== undefined && !secure.allowLayers.includes(v.manifest.name)) {
      throw new AgentError(
        'E_LAYER_NOT_ALLOWED',
        `Layer ${v.manifest.name} is not in the secure config's allowLayers`,
        {
          path: file,
        },
      );
    }
    return v;
  }

  #refused(name: string, file: string, e: unknown): void {
    const code = (e as { code?: string }).code ?? 'E_INTERNAL';
    const message = (e as Error).message;
    this.#o.log('error', `layer ${name} refused: ${code}: ${message}`, { layer: name, code });
    this.#entries.set(name, {
      file,
      info: {
        name,
        version: '',
        kind: 'app',
        state: 'refused',
        verity: 'none',
        signers: [],
        error: { code, message },
        services: [],
      },
    });
    this.#o.emit({ kind: 'layer', name, event: 'refused' });
  }

  /** Verifies and activates every stored layer not active yet, and adds their services. */
  loadAll(trust: Trust, secure: SecureConfig): Promise<void> {
    return this.#serial(async () => {
      const dir = this.#layersDir;
      const stale = await cleanStaging(dir);
      if (stale > 0) this.#o.log('warn', `removed ${stale} half-written install(s) from ${dir}/.staging`);
      const stored = await listStored(dir);
      if (stored.size === 0) return;
      const mod = await loadLayersModule();
      this.#uids ??= await UidTable.open(join(this.#o.path(this.#o.config.dataDir), 'uids.json'));
      const todo = [...stored].filter(([name]) => this.#entries.get(name)?.info.state !== 'active');
      const sel = this.#o.selinux?.();
      const verified: { name: string; file: string; v: Verified }[] = [];
      await pool(todo, BOOT_CONCURRENCY, async ([name, file]) => {
        try {
          const v = await this.#verify(mod, file, trust, secure);
          if (v.manifest.name !== name) {
            throw new AgentError('E_LAYER_NAME', `Layer file ${name}.mwl holds layer ${v.manifest.name}`, {
              path: file,
            });
          }
          // With SELinux the layers' types must be in the loaded policy before their payloads
          // are mounted with them: verify all, compile once, then activate.
          if (sel === undefined) await this.#activate(mod, v, file);
          else verified.push({ name, file, v });
        } catch (e) {
          // A copy verified but refused afterwards (wrong name, not allowed, mount failed) goes too.
          await rm(join(this.#stateDir, 'layers', '.verified', `${name}.mwl`), { force: true });
          this.#refused(name, file, e);
        }
      });
      if (sel !== undefined && verified.length > 0) {
        const refused = await this.#ensurePolicy(
          mod,
          sel,
          secure,
          verified.map((x) => x.v),
        );
        await pool(verified, BOOT_CONCURRENCY, async ({ name, file, v }) => {
          const why = refused.get(name);
          if (why !== undefined) return this.#refused(name, file, why);
          try {
            await this.#activate(mod, v, file);
          } catch (e) {
            this.#refused(name, file, e);
          }
        });
      }
      await this.#mountApps(mod, secure);
    });
  }

  /**
   * Makes the loaded policy hold the active layers (but `without`) and `extra`, and the secure
   * config's groups; returns the layers refused for their module.
   */
  async #ensurePolicy(
    mod: LayersModule,
    sel: LayerSelinux,
    secure: SecureConfig,
    extra: readonly Verified[],
    without?: string,
  ): Promise<Map<string, Error>> {
    const names = new Set(extra.map((v) => v.manifest.name));
    const layers = [
      ...[...this.#entries.values()]
        .filter((e) => e.info.state === 'active' && e.verified !== undefined)
        .map((e) => e.verified as Verified)
        .filter((v) => !names.has(v.manifest.name) && v.manifest.name !== without),
      ...extra,
    ].map((v) => ({ name: v.manifest.name, module: v.policy }));
    const groups = Object.entries(secure.groups).map(([name, g]) => ({ name, layers: g.layers }));
    return sel.keeper.ensure(mod, layers, groups);
  }

  async #activate(mod: LayersModule, v: Verified, file: string): Promise<void> {
    const name = v.manifest.name;
    const manifest = manifestKey(v.manifest);
    const mode = this.#verityMode() ?? 'userspace';
    if (mode === 'userspace') {
      this.#o.warn(
        'layers are checked by userspace verity at activation only: runtime integrity is not enforced',
      );
    }
    const activation = await activatePayload(
      name,
      {
        // The private copy in userspace mode (see #verify), the stored file with kernel verity.
        path: v.path,
        payloadOffset: v.payloadOffset,
        payloadSize: v.payloadSize,
        verityOffset: v.verityOffset,
        veritySize: v.veritySize,
        rootHash: rootHashOf(v.manifest),
      },
      join(this.#stateDir, 'layers', name),
      mode,
      this.#o.selinux?.() === undefined ? undefined : mod.layerObjectContext(name, 'files'),
    );
    this.#entries.set(name, {
      file,
      verified: v,
      manifest,
      activation,
      info: {
        name,
        version: v.manifest.version,
        kind: v.manifest.kind,
        state: 'active',
        verity: activation.verity,
        signers: v.signers.map((s) => s.subject),
        services: [],
        ...(v.manifest.kind === 'module' ? { module: moduleSummary(v.manifest) } : {}),
      },
    });
    this.#o.log('info', `layer ${name} ${v.manifest.version} active (${activation.verity} verity)`, {
      layer: name,
      version: v.manifest.version,
    });
    this.#o.emit({ kind: 'layer', name, event: 'activated' });
  }

  /** Mounts the root of every active app that has none yet and adds its services. */
  async #mountApps(mod: LayersModule, secure: SecureConfig): Promise<void> {
    this.#secure = secure;
    const active = [...this.#entries.values()].filter(
      (e) => e.info.state === 'active' && e.verified !== undefined,
    );
    const manifests = active.map((e) => e.verified?.manifest as Manifest);
    const skeletonDir = join(this.#stateDir, 'skeleton');
    if (!this.#skeleton) {
      await mountSkeletonTmpfs(skeletonDir);
      this.#skeleton = true;
    }
    // A module's actions run in a root of its own, mounted as an app's is.
    const apps = active.filter((e) => hasRoot(e) && e.rootMount === undefined);
    // uids first, one at a time: the table is one file.
    const uids = this.#uids;
    if (uids === undefined) throw new AgentError('E_INTERNAL', 'uid table not loaded');
    for (const e of apps) {
      const name = e.info.name;
      if (ownerOf(uids, name) === undefined) await uids.allocate(name);
    }
    await pool(apps, BOOT_CONCURRENCY, async (e) => {
      const m = e.verified?.manifest;
      if (m === undefined) return;
      try {
        // The resolver gives the stack bottom to top (the app last); overlayfs wants the
        // top layer first.
        const { overlayOrder } = mod.resolve(manifests, m.name);
        const lowers = [...overlayOrder].reverse().map((n) => {
          const mount = this.#entries.get(n)?.activation?.mountPoint;
          if (mount === undefined)
            throw new AgentError('E_LAYER_DEPENDENCY', `Layer ${m.name} needs ${n}, which is not active`);
          return mount;
        });
        if (!overlayOrder.includes(m.name)) {
          const own = e.activation?.mountPoint;
          if (own !== undefined) lowers.unshift(own);
        }
        const ids = uids.get(m.name) ?? (await uids.allocate(m.name));
        const owner = { uid: ids.uid, gid: ids.gid };
        const dataOwner = privateDataOwner(m.services, owner);
        const sel = this.#o.selinux?.();
        const labelling: DataLabelling | undefined =
          sel === undefined
            ? undefined
            : {
                labels: sel.labels,
                layerData: (l) => mod.layerObjectContext(l, 'data', ids.categories),
                groupData: (g) => `system_u:object_r:${mod.groupType(g)}:s0`,
              };
        const groups = grantedGroups(m.name, m.data.groups, secure);
        const refusedGroups = m.data.groups.filter((g) => !groups.includes(g));
        if (refusedGroups.length > 0) {
          this.#o.warn(
            `layer ${m.name} asks for group(s) ${refusedGroups.join(', ')} that the secure config does not grant it`,
          );
        }
        const target = join(this.#stateDir, 'roots', m.name);
        await mountAppRoot(
          skeletonDir,
          m.name,
          [...lowers, this.#o.path(this.#o.config.baseDir)],
          groups,
          target,
        );
        e.rootMount = target;
        const binds = await layerDataBinds(
          this.#o.path(this.#o.config.dataDir),
          m.name,
          dataOwner,
          m.data,
          secure,
          labelling,
        );
        const where = {
          root: target,
          binds,
          uid: owner.uid,
          gid: owner.gid,
          defaultStopSec: this.#o.config.stopTimeoutMs / 1000,
          groupGids: Object.fromEntries(
            groups.flatMap((g) => {
              const gid = secure.groups[g]?.gid;
              return gid === undefined ? [] : [[g, gid] as const];
            }),
          ),
          selinux:
            sel === undefined
              ? undefined
              : {
                  process: mod.layerProcessContext(m.name, ids.categories),
                  files: `system_u:object_r:milkyway_sandbox_tmp_t:${mod.mcsLevel(ids.categories)}`,
                  root: mod.layerObjectContext(m.name, 'root', ids.categories),
                },
        };
        e.placement = where;
        const specs: UnitSpec[] = [];
        for (const s of m.services) {
          const dataDir = this.#o.path(this.#o.config.dataDir);
          const vols = await volumeBinds(
            dataDir,
            m.name,
            s,
            owner,
            dataOwner,
            target,
            labelling?.layerData(m.name),
          );
          let kept: string | undefined;
          if (s.writableRoot === 'persistent') {
            const pr = await persistentRoot(
              dataDir,
              m.name,
              s.name,
              m.payload.verity.rootHash,
              sel === undefined
                ? undefined
                : { labels: sel.labels, context: mod.layerObjectContext(m.name, 'root', ids.categories) },
            );
            if (pr.moved)
              this.#o.log(
                'info',
                `app ${m.name}: ${s.name}'s writable root moved from secure/${m.name}/root/`,
              );
            if (pr.reset)
              this.#o.log('info', `app ${m.name}: ${s.name}'s writable root started afresh (a new payload)`);
            kept = pr.dir;
          }
          const shared = await groupVolumeBinds(dataDir, m.name, s, where.groupGids, labelling, target);
          specs.push(
            unitSpec(m.name, s, { ...where, binds: [...binds, ...vols, ...shared], persistentRoot: kept }),
          );
        }
        for (const s of specs) this.#o.supervisor.add(s);
        e.info.services = specs.map((s) => s.name);
        // Services that need nothing outside their own layer start now, while the other
        // apps' roots are still being mounted; the rest wait for the caller's startAll,
        // which also waits for these (starting twice only joins the first start).
        const own = new Set(e.info.services);
        if (specs.every((s) => [...s.after, ...s.requires, ...s.wants].every((r) => own.has(r))))
          void this.#o.supervisor.autostart([...own]);
      } catch (err) {
        this.#o.log('error', `app ${m.name}: ${(err as Error).message}`);
        await this.#deactivate(m.name);
        this.#refused(m.name, e.file, err);
      }
    });
  }

  /**
   * Unmounts a layer. Its private copy (userspace verity) stays: an app remounted over an
   * upgraded library mounts its own verified copy again; `drop` deletes it (remove, replace,
   * shutdown).
   */
  async #deactivate(name: string, drop = false): Promise<void> {
    const e = this.#entries.get(name);
    if (e === undefined) return;
    if (drop && e.verified !== undefined && e.verified.path !== e.file) {
      const copy = e.verified.path;
      await this.#deactivate(name);
      await rm(copy, { force: true });
      return;
    }
    for (const s of e.info.services) if (this.#o.supervisor.has(s)) await this.#o.supervisor.remove(s);
    e.info.services = [];
    delete e.placement;
    if (e.rootMount !== undefined) {
      await unmountAppRoot(join(this.#stateDir, 'skeleton'), name, e.rootMount);
      delete e.rootMount;
    }
    if (e.activation !== undefined) {
      await deactivatePayload(e.activation);
      delete e.activation;
    }
  }

  /** Verify, store atomically, activate, start. */
  install(source: string, trust: Trust, secure: SecureConfig): Promise<LayerInfo> {
    return this.#serial(async () => {
      const mod = await loadLayersModule();
      this.#uids ??= await UidTable.open(join(this.#o.path(this.#o.config.dataDir), 'uids.json'));
      const dir = this.#layersDir;
      // Verify the staged copy, not the source: what is checked is what gets renamed.
      const staged = await stage(dir, source);
      let v: Verified;
      try {
        v = await this.#verify(mod, staged, trust, secure);
      } catch (e) {
        const { rm } = await import('node:fs/promises');
        await rm(staged, { force: true });
        throw e;
      }
      const name = v.manifest.name;
      // The same layer again (its manifest binds payload, verity root and policy): nothing to
      // do, and nothing is stopped — what Salt's state.apply users expect of a second apply.
      const active = this.#entries.get(name);
      if (
        active?.info.state === 'active' &&
        active.manifest !== undefined &&
        active.manifest === manifestKey(v.manifest)
      ) {
        await rm(staged, { force: true });
        if (v.path !== staged) await rm(v.path, { force: true });
        this.#o.log('info', `layer ${name} ${v.manifest.version} is already active: unchanged`);
        return { ...active.info, change: 'unchanged' as const };
      }
      // SELinux: the policy with this layer (its new version) must compile and load before
      // anything changes; a refused module leaves the running policy and the old version.
      const sel = this.#o.selinux?.();
      if (sel !== undefined) {
        let refused: Map<string, Error>;
        try {
          refused = await this.#ensurePolicy(mod, sel, secure, [v]);
        } catch (e) {
          const { rm } = await import('node:fs/promises');
          await rm(staged, { force: true });
          throw e;
        }
        const why = refused.get(name);
        if (why !== undefined) {
          const { rm } = await import('node:fs/promises');
          await rm(staged, { force: true });
          throw why;
        }
      }
      const users = [...this.#entries.values()].filter(
        (e) => e.info.state === 'active' && hasRoot(e) && e.info.name !== name,
      );
      const previous = this.#entries.get(name);
      if (previous !== undefined) {
        await this.#o.supervisor.stopAll(previous.info.services);
        // Apps built on this library must be remounted over the new payload.
        for (const u of users) await this.#deactivate(u.info.name);
        await this.#deactivate(name, true);
        this.#entries.delete(name);
        for (const u of users) this.#entries.delete(u.info.name);
      }
      const file = await commit(dir, staged, name);
      this.#o.emit({ kind: 'layer', name, event: 'installed' });
      // The verified offsets hold for the renamed file (same inode); a private copy stays as is.
      await this.#activate(mod, v.path === staged ? { ...v, path: file } : v, file);
      if (previous !== undefined) {
        for (const u of users) {
          const uv = u.verified;
          if (uv !== undefined) await this.#activate(mod, uv, u.file);
        }
      }
      await this.#mountApps(mod, secure);
      const entry = this.#entries.get(name);
      if (entry === undefined) throw new AgentError('E_INTERNAL', `Layer ${name} vanished during install`);
      const toStart = [...this.#entries.values()].flatMap((e) => e.info.services);
      await this.#o.supervisor.autostart(
        toStart.filter((s) => this.#o.supervisor.get(s).state === 'stopped'),
      );
      if (entry.info.state === 'refused') {
        // The code of the check that refused it: the agent's, or layers/' or keys/' own.
        throw new MilkyWayError(
          entry.info.error?.code ?? 'E_LAYER_ACTIVATE',
          entry.info.error?.message ?? 'refused',
        );
      }
      return entry.info;
    });
  }

  remove(name: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#entries.get(name);
      if (e === undefined) throw new AgentError('E_LAYER_UNKNOWN', `No layer named ${name}`, { path: name });
      const users = [...this.#entries.values()].filter(
        (u) =>
          u.info.name !== name &&
          u.rootMount !== undefined &&
          u.verified !== undefined &&
          this.#closure(u).has(name),
      );
      if (users.length > 0) {
        throw new AgentError(
          'E_LAYER_IN_USE',
          `Cannot remove ${name}: used by ${users.map((u) => u.info.name).join(', ')}`,
        );
      }
      const services = [...e.info.services];
      await this.#o.supervisor.stopAll(services);
      // Unmount first and only then forget the layer: a mount that stays busy (a process
      // inside it) fails the remove with the layer still installed, mounted and running.
      let rootUnmounted = false;
      try {
        if (e.rootMount !== undefined) {
          await unmountOrThrow(e.rootMount, `the root of ${name}`);
          rootUnmounted = true;
        }
        if (e.activation !== undefined)
          await unmountOrThrow(e.activation.mountPoint, `the payload of ${name}`);
      } catch (err) {
        if (rootUnmounted && this.#secure !== undefined) {
          // Mounted again as at boot: its services are added anew on the new root.
          for (const s of services) if (this.#o.supervisor.has(s)) await this.#o.supervisor.remove(s);
          e.info.services = [];
          delete e.rootMount;
          await this.#mountApps(await loadLayersModule(), this.#secure);
        }
        await this.#o.supervisor.startAll(e.info.services);
        this.#o.log('warn', `layer ${name} not removed: ${(err as Error).message}`, { layer: name });
        throw err;
      }
      await this.#deactivate(name, true);
      await unstore(this.#layersDir, name);
      this.#entries.delete(name);
      const sel = this.#o.selinux?.();
      if (sel !== undefined && this.#secure !== undefined) {
        // Its types leave the policy; a failure only leaves them in (they label nothing now).
        await this.#ensurePolicy(await loadLayersModule(), sel, this.#secure, [], name).catch((e: Error) =>
          this.#o.warn(`SELinux: policy not recompiled without ${name}: ${e.message}`),
        );
      }
      this.#o.log('info', `layer ${name} removed`, { layer: name });
      this.#o.emit({ kind: 'layer', name, event: 'removed' });
    });
  }

  /** Every layer `app` runs on: its dependencies, theirs, and so on (the overlay's lowers). */
  #closure(app: Entry): Set<string> {
    const seen = new Set<string>();
    const todo = (app.verified?.manifest.dependencies ?? []).map((d) => d.name);
    for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
      if (seen.has(n)) continue;
      seen.add(n);
      for (const d of this.#entries.get(n)?.verified?.manifest.dependencies ?? []) todo.push(d.name);
    }
    return seen;
  }

  /** Shutdown: unmount roots and payloads (services are already stopped). */
  async deactivateAll(): Promise<void> {
    const apps = [...this.#entries.values()].filter((e) => e.rootMount !== undefined);
    for (const e of apps) await this.#deactivate(e.info.name, true);
    for (const e of [...this.#entries.values()]) await this.#deactivate(e.info.name, true);
    if (this.#skeleton) {
      const { run } = await import('../../common/index.ts');
      await run('umount', [join(this.#stateDir, 'skeleton')], { timeout: 10_000, reject: false }).catch(
        () => {},
      );
      this.#skeleton = false;
    }
  }
}

/** `web` for `/layers/web.mwl` (the staging name for a staged install: unique either way). */
/** A manifest as one comparable string: its canonical JSON (the bytes its signatures cover). */
function manifestKey(m: Manifest): string {
  return Buffer.from(canonicalJson(m)).toString('utf8');
}

function nameOf(file: string): string {
  return basename(file).replace(/\.mwl$/, '');
}
