// A layer manifest's services (layers/manifest.ts ServiceSpec) → the supervisor's
// ServiceSpec, with host paths (overlay root, data binds) and the layer's uid/gid filled
// in. Names become `<layer>/<service>`; `after` entries name a service of this layer or
// `layer/service` of a dependency. `user: root` runs as uid 0; any other user runs as the
// layer's own dynamic uid, so two layers never share a uid.
import type { Manifest } from './layers-contract.ts';
import { type Bind, type Readiness, SERVICE_DEFAULTS, type ServiceSpec } from '../services/service-spec.ts';

export interface ServiceContext {
  root: string;
  binds: Bind[];
  uid: number;
  gid: number;
  /** With SELinux on: the services' process context and their sandbox's tmpfs context. */
  selinux?: { process: string; files: string } | undefined;
}

export function servicesOf(m: Manifest, ctx: ServiceContext): ServiceSpec[] {
  return m.services.map((s) => {
    const r = s.readiness;
    const readiness: Readiness =
      r.type === 'exec'
        ? { type: 'exec', command: r.argv }
        : r.type === 'tcp'
          ? { type: 'tcp', port: r.port, host: r.host }
          : r;
    const root = s.user === 'root';
    const spec: ServiceSpec = {
      ...SERVICE_DEFAULTS,
      name: `${m.name}/${s.name}`,
      layer: m.name,
      exec: s.argv,
      env: s.env,
      workingDir: s.workingDirectory,
      uid: root ? 0 : ctx.uid,
      gid: root ? 0 : ctx.gid,
      capabilities: s.capabilities,
      network: s.network,
      readiness,
      startTimeoutMs: s.startTimeoutMs,
      stopTimeoutMs: s.stopTimeoutMs,
      stopSignal: s.stopSignal,
      restart: s.restart.policy,
      backoffMs: s.restart.backoffMs,
      backoffMaxMs: s.restart.maxBackoffMs,
      startLimitBurst: s.restart.burst,
      startLimitIntervalMs: s.restart.intervalMs,
      requires: s.after.map((a) => (a.includes('/') ? a : `${m.name}/${a}`)),
      limits: {
        ...(s.limits.memoryBytes === undefined ? {} : { memoryMax: s.limits.memoryBytes }),
        ...(s.limits.pids === undefined ? {} : { pidsMax: s.limits.pids }),
        ...(s.limits.cpuWeight === undefined ? {} : { cpuWeight: s.limits.cpuWeight }),
      },
      root: ctx.root,
      binds: ctx.binds,
      // Applied by the sandbox only when SELinux is enabled (agent/services/sandbox.ts).
      ...(ctx.selinux === undefined
        ? {}
        : { selinuxLabel: ctx.selinux.process, selinuxFileLabel: ctx.selinux.files }),
    };
    return spec;
  });
}
