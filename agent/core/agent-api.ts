// The agent's API: what the D-Bus service (agent/dbus/dbus-service.ts) and the peer link
// (agent/remote/peer-link.ts) call. Types only; agent/core/agent.ts implements it.
import type { ModuleAction } from '../../layers/index.ts';

/** A service's lifecycle state, as `ListServices` and the change events report it. */
export type ServiceState =
  | 'stopped' // never started, or stopped on request
  | 'waiting' // waiting for its dependencies
  | 'starting' // spawned, not ready yet
  | 'running' // ready
  | 'stopping' // SIGTERM sent
  | 'backoff' // exited, restart scheduled
  | 'exited' // exited 0 with restart policy `no` / `on-failure`
  | 'failed'; // start limit hit, readiness timeout or refused; stays until started again

export type LayerState = 'active' | 'refused' | 'removed';

export interface LayerInfo {
  name: string;
  version: string;
  kind: 'app' | 'library' | 'module';
  state: LayerState;
  /** How the payload is mounted: kernel dm-verity, or userspace-checked (no runtime integrity). */
  verity: 'kernel' | 'userspace' | 'none';
  /** Subject CNs of the certificates whose signatures verified. */
  signers: string[];
  /** Why the layer was refused (code and message), when it was. */
  error?: { code: string; message: string };
  services: string[];
  /** A module's digest, verb and actions (agent/modules/module-summary.ts); modules only. */
  module?: ModuleSummary;
  /** installLayer only: `unchanged` when this very layer (same signed manifest) was already active. */
  change?: 'unchanged';
}

export interface ServiceInfo {
  /** Unique name `<layer>/<service>` … or just the service name when the layer has one service named like it. */
  name: string;
  layer: string;
  state: ServiceState;
  /** Host pid of the sandbox (bwrap) while it runs. */
  pid?: number;
  /** Starts since the last reset (start limit counter input). */
  restarts: number;
  /** ISO time of the last state change. */
  since: string;
  /** How the last run ended. */
  lastExit?: { code: number | null; signal: string | null; at: string };
  /** Why it failed (state `failed`) or why its last run ended (state `backoff`): exit status, signal, readiness timeout, start limit. */
  error?: string;
  /** The last lines (at most 10) its last run printed on stdout or stderr, kept when the run ended. */
  lastOutput?: string[];
  /** Resource limits the manifest asked for that this kernel could not apply (e.g. `memory.max`). */
  limitsNotApplied: string[];
  /** With SELinux on: the domain and category pair it runs in (doc/selinux.md, "Status"). */
  selinux?: ServiceSelinux;
}

/** A service's SELinux context: the one the agent gives it, and the kernel's word on its processes. */
export interface ServiceSelinux {
  /** What bwrap --exec-label gives its processes: `system_u:system_r:<domain>:<level>`. */
  context: string;
  /** Its layer's domain, `mway_<layer>_t`. */
  domain: string;
  /** Its MCS level, `s0:cA,cB`: the layer's category pair. */
  level: string;
  /**
   * While it runs: the distinct contexts the kernel reports for the processes of its sandbox
   * (/proc/PID/attr/current), the agent's own (sh, unshare, bwrap) left out. `[context]` when
   * all is as it should be.
   */
  running?: string[];
}

export interface LogLine {
  /** ISO time the line was read. */
  time: string;
  stream: 'stdout' | 'stderr' | 'agent';
  text: string;
}

export type AgentState = 'booting' | 'running' | 'degraded' | 'stopping' | 'emergency';

export interface AgentStatus {
  state: AgentState;
  /** `pid1` on a booted MilkyWayLinux, `namespace` under `unshare --pid` on a host. */
  mode: 'pid1' | 'namespace';
  bootedAt: string;
  /** Whether the signed secure config verified; services start only when it did. */
  secureConfig: { verified: boolean; signer?: string; error?: string };
  /**
   * The CRLs in force: how many, whether the last good list had to be kept, and each file of
   * the certificate partition that was refused with its code.
   */
  crls: {
    count: number;
    source: 'partition' | 'partition+last-good';
    /** How many of `count` were pushed with `mway crl push` (kept on the data partition). */
    pushed?: number;
    problems: { path: string; code: string; message: string }[];
  };
  layers: { active: number; refused: number };
  services: {
    total: number;
    running: number;
    failed: number;
    /** Services failed or restarting, each with why and its last output (what a shell would show). */
    problems: { name: string; state: ServiceState; error: string; lastOutput: string[] }[];
  };
  /** SELinux as the kernel enforces it (doc/selinux.md). */
  selinux: SelinuxStatus;
  /** Things an operator should know (userspace verity, limits not applied, …). */
  warnings: string[];
  /** The A/B CoreOS slots (doc/how-to-update.md); absent where updates are not configured. */
  coreos?: CoreosStatus;
}

/** Which slot runs, what each slot holds, the rollback floor and the last trial's outcome. */
export type CoreosStatus =
  | { available: false; reason: string }
  | {
      available: true;
      disk: string;
      running: 'a' | 'b';
      slots: {
        slot: 'a' | 'b';
        label: string | null;
        version: string | null;
        rootHash: string | null;
        priority: number;
        tries: number;
        successful: boolean;
        bootable: boolean;
      }[];
      rollbackFloor: number;
      trial?: { slot: 'a' | 'b'; version: string; rollbackIndex: number; armedAt: string };
      lastGood?: { slot: 'a' | 'b'; version: string; at: string };
      lastRollback?: { slot: 'a' | 'b'; version: string; reason: string; at: string };
      gate: GateStatus;
    };

/** The health gate of this boot: idle (not a trial), waiting, grace, passed, failed. */
export interface GateStatus {
  state: 'idle' | 'waiting' | 'grace' | 'passed' | 'failed';
  since?: string;
  reason?: string;
}

export interface SelinuxStatus {
  /** From the signed command line: `enforcing=1` / `enforcing=0`; `off` without SELinux. */
  mode: 'enforcing' | 'permissive' | 'off';
  /** The loaded policy: base version, binary format, sha256 of what the kernel holds, layers in it. */
  policy?: { version: number; format: number; sha256: string; layers: number };
  /** AVC denials since boot: the kernel's (from its log) and the agent's own (its D-Bus checks). */
  denials: number;
  /**
   * Kernel records that may have been denials and were never counted: overwritten in the ring
   * before the agent read them, or kept from the log by the kernel's printk rate limit.
   */
  unseen?: number;
  /** The last denial, as logged. */
  lastDenial?: string;
  /** The agent's own context. */
  context?: string;
}

/** A state change, delivered to `onChange` listeners (D-Bus signals are built from these). */
export type AgentChange =
  | { kind: 'service'; name: string; state: ServiceState }
  | { kind: 'layer'; name: string; event: 'installed' | 'activated' | 'refused' | 'removed' };

export interface AgentApi {
  status(): Promise<AgentStatus>;
  listLayers(): Promise<LayerInfo[]>;
  listServices(): Promise<ServiceInfo[]>;
  /** E_SERVICE_UNKNOWN when there is no such service. */
  getService(name: string): Promise<ServiceInfo>;
  startService(name: string): Promise<void>;
  stopService(name: string): Promise<void>;
  restartService(name: string): Promise<void>;
  /**
   * Whether `name` starts on its own at boot and when its layer is installed (systemd's
   * enable/disable; kept on the data partition). `changed` is false when it already was.
   * E_SERVICE_UNKNOWN when there is no such service.
   */
  setServiceEnabled(name: string, enabled: boolean): Promise<{ enabled: boolean; changed: boolean }>;
  /** The last `lines` lines (default 100) of the service's ring buffer, oldest first. */
  logs(name: string, options: { lines?: number }): Promise<LogLine[]>;
  /** Verifies, stores atomically, activates and starts the layer's services. */
  installLayer(mwlPath: string): Promise<LayerInfo>;
  /**
   * Verifies an update bundle (doc/update-bundle.md) for this machine, writes it into the
   * inactive CoreOS slot and arms one trial boot; the caller reboots (or not).
   */
  updateCoreos(
    bundlePath: string,
    /** A user-signed downgrade permit and the bundle digest the command names (older versions). */
    downgrade?: { permit: unknown; sha256: string },
  ): Promise<Record<string, unknown>>;
  /**
   * Checks the first bytes of an update bundle (its signed manifest) against this machine's
   * policy before the rest is received; throws the refusal (E_BUNDLE_*).
   */
  checkCoreosBundleHead(head: Uint8Array, downgrade?: { permit: unknown; sha256: string }): Promise<void>;
  /**
   * Makes the other, known-good CoreOS slot the next boot (E_ROLLBACK_NOT_BOOTABLE,
   * E_ROLLBACK_FLOOR otherwise); the caller reboots (or not).
   */
  rollbackCoreos(): Promise<Record<string, unknown>>;
  /** Stops an install writing the inactive slot and disarms an armed one; idempotent. */
  cancelCoreosUpdate(): Promise<Record<string, unknown>>;
  /** Stops the layer's services, deactivates it and deletes it from storage. */
  removeLayer(name: string): Promise<void>;
  /** Writes secrets into `secure/<layer>/secrets/` or `group/<group>/secrets/` (0600, atomically). */
  putSecrets(layerOrGroup: string, values: Record<string, Uint8Array>): Promise<void>;
  /**
   * Runs an action of an active module in its sandbox (agent/modules/module-run.ts): its output,
   * and `failure` when it exited non-zero. E_MODULE_* when it cannot run or misbehaves.
   */
  runModule(
    request: ModuleRunRequest,
  ): Promise<{ output: ModuleRunOutput; failure?: { code: string; message: string } }>;
  /** Orderly shutdown, then reboot (PID 1) or exit status 0 (namespace mode); resolves when it has begun. */
  reboot(): Promise<void>;
  poweroff(): Promise<void>;
  /** Subscribes to state changes; returns the unsubscribe function. */
  onChange(listener: (change: AgentChange) => void): () => void;
}

// --- Modules (agent/modules/) ---------------------------------------------------------

/** What a signed `module.run` asks (control/wire/module-run.ts). */
export interface ModuleRunRequest {
  module: string;
  action: string;
  args: Record<string, unknown>;
  manifest?: string;
}

/** What an action returned, as the signed result carries it. */
export interface ModuleRunOutput {
  module: string;
  version: string;
  action: string;
  /** The action's exit status (0 for a result that is `ok`). */
  exitCode: number;
  /** The one JSON value the action printed on stdout. */
  result: unknown;
  /** The end of what it printed on stderr (at most 4 KiB), when it failed. */
  stderr?: string;
}

export interface ModuleSummary {
  /** sha256 of the module's canonical manifest (module-run.ts `manifestDigest`). */
  manifest: string;
  verb?: { name: string; description: string };
  actions: Array<
    Pick<ModuleAction, 'name' | 'description' | 'args' | 'privileges' | 'output' | 'timeoutSec'>
  >;
}
