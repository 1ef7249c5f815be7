// A/B CoreOS updates on the machine (doc/how-to-update.md): finds the disk and the slot it
// booted, installs a verified bundle into the other slot and arms one trial boot, and after
// each boot settles the trial — the health gate passed: the slot is marked successful and the
// rollback floor raised (only now: Android AVB's rule); failed: the slot is marked bad and,
// when the other slot still boots, the machine reboots into it; with nothing to fall back to
// it stays up degraded and says so (no reboot loop, greenboot#26). A trial whose boot never
// reached the agent (stage 1 used its one try) is found at the next boot and reported as
// rolled back. The boot-time slot choice itself is stage 1's (bootchain/).
import { readdir, readFile } from 'node:fs/promises';

import { writePartitionEntries } from '../../formats/index.ts';
import type { Certificate, Crl } from '../../keys/index.ts';
import {
  type BundlePolicy,
  type DiskSlots,
  encodeSlot,
  disarmInactive,
  installToSlot,
  other,
  readDiskSlots,
  rollbackToOther,
  readUpdateState,
  runningSlot,
  SLOTS,
  type SlotName,
  UpdateError,
  type UpdateState,
  verifyBundle,
  verifyDowngradePermit,
  verifyBundleHead,
  willBoot,
  withUpdateLock,
  writeUpdateState,
} from '../../update/index.ts';
import type { CoreosStatus, GateStatus } from './agent-api.ts';
import type { UpdateConfig } from './agent-config.ts';
import type { LogFn } from './agent-log.ts';
import { type GateResult, runHealthGate } from './health-gate.ts';
import { resetByWatchdog } from './watchdog.ts';

export interface UpdaterOptions {
  config: UpdateConfig;
  /** Host path of a path inside the agent's root. */
  path: (p: string) => string;
  log: LogFn;
  warn: (message: string) => void;
  /** What is not healthy yet (null: healthy), for the gate. */
  health: () => Promise<string | null>;
  trust: () => { anchors: readonly Certificate[]; crls: readonly Crl[] } | undefined;
  reboot: (reason: string) => void;
  /** Told the bytes written into the inactive slot so far (the agent logs the progress). */
  onWrite?: (done: number, total: number) => void;
  /** `/proc/cmdline` (tests give their own). */
  cmdline?: () => Promise<string>;
  /** Whether a watchdog reset the machine into this boot (default: sysfs bootstatus). */
  watchdogReset?: () => Promise<boolean>;
}

const now = () => new Date().toISOString();

/** A downgrade permit as the command carried it, and the bundle digest the command names. */
export interface DowngradeRequest {
  permit: unknown;
  sha256: string;
}

/** The disk whose GPT holds a partition with GUID `uuid` (the running CoreOS), from sysfs. */
async function findDisk(uuid: string): Promise<string | undefined> {
  const disks = await readdir('/sys/block').catch(() => [] as string[]);
  for (const d of disks) {
    if (/^(loop|ram|dm-|zram)/.test(d)) continue;
    try {
      const slots = await readDiskSlots(`/dev/${d}`);
      if (SLOTS.some((n) => slots[n].data.uuid.toLowerCase() === uuid)) return `/dev/${d}`;
    } catch {
      // not a MilkyWayLinux disk
    }
  }
  return undefined;
}

export class CoreosUpdater {
  readonly #o: UpdaterOptions;
  #disk: string | undefined;
  #rootHash: string | undefined;
  #unavailable: string | undefined = 'not started';
  #gate: GateStatus = { state: 'idle' };
  readonly #abort = new AbortController();
  /** Aborted when the operator's rollback decides this boot's trial instead of its gate. */
  readonly #superseded = new AbortController();
  /** The install writing the inactive slot now, and how to stop it (`mway update --cancel`). */
  #installing: { stop: AbortController; done: Promise<unknown> } | undefined;

  constructor(o: UpdaterOptions) {
    this.#o = o;
  }

  get statePath(): string {
    return this.#o.path(this.#o.config.stateFile);
  }

  async #locate(): Promise<void> {
    const c = this.#o.config;
    const cmdline = await (this.#o.cmdline ?? (() => readFile('/proc/cmdline', 'utf8')))().catch(() => '');
    // Stage 1 booted the slot's own stage 2, whose signed command line names that slot's CoreOS.
    this.#rootHash = c.rootHash ?? /(?:^|\s)mway\.roothash=([0-9a-f]{64})(?:\s|$)/.exec(cmdline)?.[1];
    if (this.#rootHash === undefined) {
      this.#unavailable = 'the running CoreOS root hash is unknown (no mway.roothash on the command line)';
      return;
    }
    const dataUuid = `${this.#rootHash.slice(0, 8)}-${this.#rootHash.slice(8, 12)}-${this.#rootHash.slice(12, 16)}-${this.#rootHash.slice(16, 20)}-${this.#rootHash.slice(20, 32)}`;
    this.#disk = c.disk === undefined ? await findDisk(dataUuid) : this.#o.path(c.disk);
    this.#unavailable = this.#disk === undefined ? 'no disk holds the running CoreOS' : undefined;
  }

  async #slots(): Promise<{ slots: DiskSlots; running: SlotName; disk: string }> {
    const disk = this.#disk as string;
    const slots = await readDiskSlots(disk);
    return { slots, running: runningSlot(slots, this.#rootHash as string), disk };
  }

  /** Writes slot states (both GPT copies, one write). */
  #setStates(
    disk: string,
    slots: DiskSlots,
    states: Partial<Record<SlotName, { priority: number; tries: number; successful: boolean }>>,
  ): void {
    writePartitionEntries(
      disk,
      SLOTS.flatMap((n) => {
        const s = states[n];
        const p = slots[n].statePartition;
        return s === undefined ? [] : [{ index: p.index, attributes: encodeSlot(p.attributes, s) }];
      }),
    );
  }

  /**
   * After `boot done`: settles a trial that did not come back (rolled back by stage 1), then
   * runs the health gate when this boot is the trial. Never throws: problems become warnings.
   */
  async start(): Promise<void> {
    try {
      await this.#locate();
      if (this.#disk === undefined) {
        this.#o.log('info', `A/B updates unavailable: ${this.#unavailable}`);
        return;
      }
      const { slots, running, disk } = await this.#slots();
      const state = await readUpdateState(this.statePath);
      const r = slots[running];
      this.#o.log(
        'info',
        `CoreOS slot ${running} (${r.label ?? '?'})${r.state.successful ? '' : ` on trial, ${r.state.tries} tries left`}`,
      );
      if (state.trial !== undefined && state.trial.slot !== running) {
        // Armed, rebooted, and stage 1 came back to this slot: the trial never passed its gate.
        // The watchdog's own flag says why when it was a hang (agent/core/watchdog.ts).
        const hung = await (this.#o.watchdogReset ?? resetByWatchdog)();
        const reason = `the trial boot of slot ${state.trial.slot} did not reach the health gate${hung ? ' (the watchdog reset the machine: it hung)' : ''}; stage 1 booted slot ${running} again`;
        const t = slots[state.trial.slot];
        if (t.state.priority !== 0 || t.state.tries !== 0)
          this.#setStates(disk, slots, { [state.trial.slot]: { priority: 0, tries: 0, successful: false } });
        await this.#record({
          ...state,
          trial: undefined,
          lastRollback: { slot: state.trial.slot, version: state.trial.version, reason, at: now() },
        });
        this.#o.warn(
          `CoreOS update to ${state.trial.version} (slot ${state.trial.slot}) was rolled back: ${reason}`,
        );
        return;
      }
      if (!r.state.successful) await this.#gateTrial(state, running);
    } catch (e) {
      this.#unavailable = `${(e as { code?: string }).code ?? 'E_INTERNAL'}: ${(e as Error).message}`;
      this.#o.warn(`A/B update state: ${this.#unavailable}`);
    }
  }

  async #record(s: Omit<UpdateState, 'trial'> & { trial?: UpdateState['trial'] | undefined }): Promise<void> {
    const { trial, ...rest } = s;
    await writeUpdateState(this.statePath, trial === undefined ? rest : { ...rest, trial });
  }

  async #gateTrial(state: UpdateState, running: SlotName): Promise<void> {
    const c = this.#o.config;
    const res: GateResult = await runHealthGate({
      check: this.#o.health,
      readyWithinMs: c.readyWithinMs,
      graceMs: c.graceMs,
      signal: AbortSignal.any([this.#abort.signal, this.#superseded.signal]),
      onPhase: (phase) => {
        this.#gate = { state: phase, since: now() };
      },
    });
    // The operator rolled back meanwhile: that decided the trial, and wrote its state.
    if (this.#superseded.signal.aborted) return;
    const { slots, disk } = await this.#slots();
    const version = slots[running].version ?? '?';
    if (res.ok) {
      const fallback = slots[other(running)];
      this.#setStates(disk, slots, {
        [running]: { priority: 2, tries: 0, successful: true },
        ...(willBoot(fallback.state) ? { [other(running)]: { ...fallback.state, priority: 1 } } : {}),
      });
      const floor = Math.max(
        state.rollbackFloor,
        state.trial?.slot === running ? state.trial.rollbackIndex : 0,
      );
      await this.#record({
        ...state,
        trial: undefined,
        rollbackFloor: floor,
        lastGood: { slot: running, version, at: now() },
      });
      this.#gate = { state: 'passed', since: now() };
      this.#o.log(
        'info',
        `CoreOS slot ${running} (${version}) passed its health gate: marked good, rollback floor ${floor}`,
      );
      return;
    }
    this.#gate = { state: 'failed', since: now(), reason: res.reason };
    this.#setStates(disk, slots, { [running]: { priority: 0, tries: 0, successful: false } });
    const fallback = slots[other(running)];
    await this.#record({
      ...state,
      trial: undefined,
      lastRollback: { slot: running, version, reason: res.reason, at: now() },
    });
    if (willBoot(fallback.state)) {
      this.#o.log(
        'error',
        `CoreOS slot ${running} (${version}) failed its health gate: ${res.reason}; rebooting into slot ${other(running)}`,
      );
      this.#o.reboot(`health gate failed: ${res.reason}`);
    } else
      this.#o.warn(
        `CoreOS slot ${running} (${version}) failed its health gate (${res.reason}) and slot ${other(running)} cannot boot: staying up degraded, no reboot`,
      );
  }

  stop(): void {
    this.#abort.abort();
  }

  /** The disk and the trust to verify a bundle with, or the refusal. */
  async #ready(): Promise<{ anchors: readonly Certificate[]; crls: readonly Crl[] }> {
    if (this.#disk === undefined) await this.#locate();
    if (this.#disk === undefined)
      throw new UpdateError('E_SLOT_DISK', `Cannot update CoreOS: ${this.#unavailable ?? 'no disk'}`);
    const trust = this.#o.trust();
    if (trust === undefined)
      throw new UpdateError(
        'E_BUNDLE_SIGNATURE',
        'Cannot verify an update bundle: the trust anchors are not loaded',
      );
    return trust;
  }

  /**
   * What this machine allows: its architecture, a newer version of its OS (or, with a
   * user-signed downgrade permit for this very bundle, an older one), at least its floor.
   */
  #policy(
    slots: DiskSlots,
    running: SlotName,
    state: UpdateState,
    trust: { anchors: readonly Certificate[]; crls: readonly Crl[] },
    downgrade: DowngradeRequest | undefined,
  ): BundlePolicy {
    const r = slots[running];
    return {
      architecture: process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch,
      ...(r.osName !== null && r.version !== null ? { running: { name: r.osName, version: r.version } } : {}),
      rollbackFloor: state.rollbackFloor,
      ...(downgrade === undefined
        ? {}
        : {
            permitDowngrade: (m) => {
              verifyDowngradePermit(downgrade.permit, {
                ...trust,
                manifest: m,
                bundleSha256: downgrade.sha256,
              });
              this.#o.log(
                'info',
                `CoreOS ${m.version} is not newer than ${r.version ?? '?'}: a user-signed downgrade permit allows it`,
              );
              return true;
            },
          }),
    };
  }

  /**
   * The first piece of a bundle (`coreos.chunk` at offset 0): its signature and this machine's
   * policy, so a replayed, older or foreign bundle is refused before the rest is sent.
   */
  async checkHead(head: Uint8Array, downgrade?: DowngradeRequest): Promise<void> {
    const trust = await this.#ready();
    const { slots, running } = await this.#slots();
    const state = await readUpdateState(this.statePath);
    verifyBundleHead(head, { ...trust, policy: this.#policy(slots, running, state, trust, downgrade) });
  }

  /** Verifies `bundlePath` for this machine and writes it into the inactive slot, armed. */
  async install(bundlePath: string, downgrade?: DowngradeRequest): Promise<Record<string, unknown>> {
    const trust = await this.#ready();
    // Cancellable from the lock on: during the bundle's verification as during the write.
    const stop = new AbortController();
    const run = withUpdateLock(this.statePath, async () => {
      const { slots, running, disk } = await this.#slots();
      const state = await readUpdateState(this.statePath);
      const bundle = await verifyBundle(bundlePath, {
        anchors: trust.anchors,
        crls: trust.crls,
        policy: this.#policy(slots, running, state, trust, downgrade),
      });
      const done = await installToSlot(disk, bundlePath, bundle, {
        running,
        signal: stop.signal,
        ...(this.#o.onWrite === undefined ? {} : { onProgress: this.#o.onWrite }),
      });
      await this.#record({
        ...state,
        trial: {
          slot: done.slot,
          version: done.version,
          rollbackIndex: bundle.manifest.rollbackIndex,
          armedAt: now(),
        },
      });
      this.#o.log(
        'info',
        `CoreOS ${done.version} written to slot ${done.slot} and verified; armed for one trial boot`,
      );
      return {
        slot: done.slot,
        version: done.version,
        rootHash: done.rootHash,
        rollbackIndex: bundle.manifest.rollbackIndex,
        bytes: done.bytes,
      };
    });
    this.#installing = { stop, done: run };
    try {
      return await run;
    } finally {
      if (this.#installing?.stop === stop) this.#installing = undefined;
    }
  }

  /**
   * `coreos.rollback`: the other, known-good slot boots next (refused unless it will boot and
   * its signed rollback index is at least the floor); a running trial is marked bad. The
   * caller reboots. The reason is kept as the last rollback.
   */
  async rollback(): Promise<Record<string, unknown>> {
    await this.#ready();
    return withUpdateLock(this.statePath, async () => {
      const { running, disk } = await this.#slots();
      const state = await readUpdateState(this.statePath);
      const r = await rollbackToOther(disk, running, state.rollbackFloor);
      this.#superseded.abort();
      const { slots } = await this.#slots();
      const reason = `the operator rolled back to slot ${r.to} (${r.version ?? '?'})${r.abandonedTrial ? ' during the trial' : ''}`;
      await this.#record({
        ...state,
        trial: undefined,
        lastRollback: { slot: running, version: slots[running].version ?? '?', reason, at: now() },
      });
      if (r.abandonedTrial) this.#gate = { state: 'failed', since: now(), reason };
      this.#o.log('info', `CoreOS: ${reason}; slot ${r.to} boots next`);
      return { ...r };
    });
  }

  /**
   * `coreos.cancel`: stops an install that is writing the inactive slot, and disarms an armed
   * one that has not booted; the slot is left empty, nothing boots it. Idempotent.
   */
  async cancel(): Promise<Record<string, unknown>> {
    await this.#ready();
    const writing = this.#installing;
    if (writing !== undefined) {
      writing.stop.abort();
      await writing.done.catch(() => {});
    }
    return withUpdateLock(this.statePath, async () => {
      const { running, disk } = await this.#slots();
      const state = await readUpdateState(this.statePath);
      const r = await disarmInactive(disk, running);
      if (state.trial !== undefined && state.trial.slot !== running)
        await this.#record({ ...state, trial: undefined });
      const stopped = writing !== undefined;
      if (r.change === 'changed' || stopped)
        this.#o.log(
          'info',
          `CoreOS update cancelled${stopped ? ' while writing' : ''}: slot ${r.slot}${r.version === null ? '' : ` (${r.version})`} left empty, slot ${running} boots next`,
        );
      return {
        slot: r.slot,
        version: r.version,
        stoppedWrite: stopped,
        change: stopped ? 'changed' : r.change,
      };
    });
  }

  async status(): Promise<CoreosStatus> {
    if (this.#disk === undefined) return { available: false, reason: this.#unavailable ?? 'unknown' };
    try {
      const { slots, running } = await this.#slots();
      const state = await readUpdateState(this.statePath);
      return {
        available: true,
        disk: this.#disk,
        running,
        slots: SLOTS.map((n) => ({
          slot: n,
          label: slots[n].label,
          version: slots[n].version,
          rootHash: slots[n].rootHash,
          ...slots[n].state,
          bootable: willBoot(slots[n].state),
        })),
        rollbackFloor: state.rollbackFloor,
        ...(state.trial === undefined ? {} : { trial: state.trial }),
        ...(state.lastGood === undefined ? {} : { lastGood: state.lastGood }),
        ...(state.lastRollback === undefined ? {} : { lastRollback: state.lastRollback }),
        gate: this.#gate,
      };
    } catch (e) {
      return {
        available: false,
        reason: `${(e as { code?: string }).code ?? 'E_INTERNAL'}: ${(e as Error).message}`,
      };
    }
  }
}
