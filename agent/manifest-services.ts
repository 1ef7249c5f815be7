// A layer manifest's service entries → the supervisor's ServiceSpec, with the host paths
// (overlay root, data binds) and the layer's uid/gid filled in. Names become
// `<layer>/<service>`; requirements on another layer's service are written that way too.
import { AgentError } from './agent-error.ts';
import type { Manifest, ManifestService } from './layers-contract.ts';
import {
  SERVICE_DEFAULTS,
  type Bind,
  type Readiness,
  type RestartPolicy,
  type ServiceSpec,
} from './service-spec.ts';

export interface ServiceContext {
  root: string;
  binds: Bind[];
  uid: number;
  gid: number;
  stopTimeoutMs: number;
}

function bad(layer: string, svc: string, key: string, what: string): never {
  throw new AgentError('E_SERVICE_SPEC', `Layer ${layer} service ${svc}: ${key}: ${what}`, {
    path: `${layer}/${svc}`,
  });
}

function strings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function readiness(s: ManifestService, layer: string): Readiness {
  const r = s.readiness;
  if (r === undefined || r === 'none') return { type: 'none' };
  if (r === 'notify') return { type: 'notify' };
  if (typeof r === 'object' && r !== null) {
    const o = r as Record<string, unknown>;
    if (o.type === 'notify') return { type: 'notify' };
    if (o.type === 'none') return { type: 'none' };
    if (o.type === 'tcp' && typeof o.port === 'number') {
      return typeof o.host === 'string'
        ? { type: 'tcp', port: o.port, host: o.host }
        : { type: 'tcp', port: o.port };
    }
    if (o.type === 'exec' && strings(o.command)) return { type: 'exec', command: o.command };
  }
  bad(layer, s.name, 'readiness', 'expected none, notify, {type: tcp, port} or {type: exec, command}');
}

export function servicesOf(m: Manifest, ctx: ServiceContext): ServiceSpec[] {
  const names = new Set((m.services ?? []).map((s) => s.name));
  return (m.services ?? []).map((s) => {
    const exec = s.exec ?? s.command;
    if (!strings(exec) || exec.length === 0) bad(m.name, s.name, 'exec', 'expected a non-empty argv array');
    const restart = (s.restart ?? 'on-failure') as RestartPolicy;
    if (!['no', 'on-failure', 'always'].includes(restart))
      bad(m.name, s.name, 'restart', 'expected no, on-failure or always');
    const network = (s.network ?? 'none') as 'none' | 'host';
    if (network !== 'none' && network !== 'host') bad(m.name, s.name, 'network', 'expected none or host');
    const r = readiness(s, m.name);
    if (r.type === 'tcp' && network !== 'host')
      bad(m.name, s.name, 'readiness', 'tcp readiness needs network host');
    const req = [...(strings(s.requires) ? s.requires : []), ...(strings(s.after) ? s.after : [])];
    const limits = (s.limits ?? s.resources ?? {}) as Record<string, unknown>;
    const spec: ServiceSpec = {
      ...SERVICE_DEFAULTS,
      name: `${m.name}/${s.name}`,
      layer: m.name,
      exec,
      env: (typeof s.env === 'object' && s.env !== null ? s.env : {}) as Record<string, string>,
      workingDir: typeof s.workingDir === 'string' ? s.workingDir : '/',
      uid: ctx.uid,
      gid: ctx.gid,
      capabilities: strings(s.capabilities) ? s.capabilities : [],
      network,
      readiness: r,
      startTimeoutMs: num(s.startTimeoutMs) ?? SERVICE_DEFAULTS.startTimeoutMs,
      stopTimeoutMs: num(s.stopTimeoutMs) ?? ctx.stopTimeoutMs,
      restart,
      requires: [...new Set(req.map((n) => (n.includes('/') ? n : names.has(n) ? `${m.name}/${n}` : n)))],
      limits: {
        ...(num(limits.memoryMax) === undefined ? {} : { memoryMax: num(limits.memoryMax) as number }),
        ...(num(limits.pidsMax) === undefined ? {} : { pidsMax: num(limits.pidsMax) as number }),
        ...(num(limits.cpuWeight) === undefined ? {} : { cpuWeight: num(limits.cpuWeight) as number }),
      },
      root: ctx.root,
      binds: ctx.binds,
    };
    if (typeof s.user === 'number') spec.uid = s.user;
    if (typeof s.selinuxType === 'string') spec.selinuxLabel = `system_u:system_r:${s.selinuxType}:s0`;
    return spec;
  });
}
