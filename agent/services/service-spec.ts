// What the supervisor needs to run one service, after the agent has resolved the layer's
// manifest into host paths (overlay root, data directories). The manifest's service
// entries map onto this in agent/layers/manifest-services.ts.

export type Readiness =
  | { type: 'none' } // ready once spawned
  | { type: 'notify' } // READY=1 on $NOTIFY_SOCKET (sd_notify)
  | { type: 'tcp'; port: number; host?: string } // a TCP connect succeeds (network host only)
  | { type: 'exec'; command: string[] }; // the probe exits 0, run inside the sandbox

export type RestartPolicy = 'no' | 'on-failure' | 'always';

export interface Bind {
  src: string;
  dest: string;
  readOnly: boolean;
}

export interface ServiceSpec {
  /** Unique across the agent: `<layer>/<service>`. */
  name: string;
  layer: string;
  /** argv inside the sandbox. */
  exec: string[];
  env: Record<string, string>;
  workingDir: string;
  uid: number;
  gid: number;
  /** Capabilities kept (names like `CAP_NET_BIND_SERVICE`); all others are dropped. */
  capabilities: string[];
  network: 'none' | 'host';
  readiness: Readiness;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Sent first on stop (then SIGKILL after stopTimeoutMs). */
  stopSignal: string;
  restart: RestartPolicy;
  /** First restart delay; doubles on each restart up to `backoffMaxMs`. */
  backoffMs: number;
  backoffMaxMs: number;
  /** More than `startLimitBurst` starts within `startLimitIntervalMs` → failed (systemd: 5 in 10 s). */
  startLimitBurst: number;
  startLimitIntervalMs: number;
  /** Services that must be running first (and are stopped after this one). */
  requires: string[];
  limits: { memoryMax?: number; pidsMax?: number; cpuWeight?: number };
  /** Host path of the service's root filesystem (the layer's read-only overlay). */
  root: string;
  binds: Bind[];
  /** SELinux: the service's process context (its layer's domain and pair); applied only when SELinux is enabled. */
  selinuxLabel?: string;
  /** SELinux: the context of the sandbox's own tmpfs mounts (bwrap --file-label). */
  selinuxFileLabel?: string;
}

export const SERVICE_DEFAULTS = {
  env: {},
  workingDir: '/',
  uid: 0,
  gid: 0,
  capabilities: [],
  network: 'none',
  readiness: { type: 'none' },
  startTimeoutMs: 30_000,
  stopTimeoutMs: 10_000,
  stopSignal: 'SIGTERM',
  restart: 'on-failure',
  backoffMs: 100,
  backoffMaxMs: 30_000,
  startLimitBurst: 5,
  startLimitIntervalMs: 10_000,
  requires: [],
  limits: {},
  binds: [],
} as const satisfies Partial<ServiceSpec>;
