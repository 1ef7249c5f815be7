// A compose file (compose-spec.io, the subset a layer can hold) read into one plan per
// service: what replaces the image's config (entrypoint, command, environment, user,
// working_dir, stop_signal, volumes — the way `docker compose up` overrides an image) and the
// manifest fields compose sets beyond it (restart, readiness, ordering, stop timeout,
// capabilities). Every key is either mapped, reported as not mapped, or refused naming its
// key path (E_COMPOSE_UNSUPPORTED): nothing is dropped silently. Pure: no image is read here.
import { parseDocument } from 'yaml';
import { LayerError } from './layer-error.ts';
import type { OciConfigOverride } from './oci-import.ts';
import { NAME } from './service.ts';
import {
  commandWords,
  durationSeconds,
  type Fail,
  healthReadiness,
  mapRestart,
  parsePort,
  parseVolume,
} from './compose-values.ts';

/** A compose file is read whole; a bigger one is refused before parsing. */
export const MAX_COMPOSE_BYTES = 1 << 20;

export interface ComposeService {
  /** The compose service name (also the service's name inside its layer). */
  name: string;
  /** An import-oci reference or archive path (a relative path resolved by the caller). */
  image: string;
  /** OCI config fields that replace the image's (`Env` entries are added after the image's). */
  config: OciConfigOverride;
  /** Paths kept as the layer's private data (anonymous volumes, named ones only it uses). */
  volumes: string[];
  /** Named volumes other services use too, at `path`: the project's group data (groupVolumes). */
  shared: { volume: string; path: string }[];
  /** Manifest service fields compose sets (restart, readiness, timeoutStopSec). */
  service: Record<string, unknown>;
  /** Compose services this one starts after, and which of them it requires. */
  after: string[];
  requires: string[];
  capAdd: string[];
  /** `ALL` drops every capability, as `cap_drop: [ALL]`. */
  capDrop: string[];
  /** `platform: linux/arm64`: the layer's architecture, the image taken for it. */
  architecture?: 'x86_64' | 'aarch64';
  /** Keys read but with no exact equivalent, for the report (`services.web.expose: …`). */
  notes: string[];
}

export interface ComposeProject {
  name: string;
  services: ComposeService[];
  notes: string[];
}

// Keys refused with the reason a user needs; any other unknown key is refused too.
const REFUSED: Record<string, string> = {
  build: 'a layer is imported from an image: build it first and name it in image',
  networks: "services share the host's network (there are no compose networks)",
  network_mode: "services share the host's network",
  env_file: 'write the variables under environment',
  privileged: 'a layer names its capabilities (cap_add)',
  devices: 'layers get no device nodes',
  extends: 'write the service out in full',
  secrets: 'use the agent’s sealed secrets',
  configs: 'put the file in the image or a volume',
  deploy: 'replicas and resources are not per-layer settings here',
  profiles: 'every service of the file is imported',
};
const IGNORED_NOTE: Record<string, string> = {
  container_name: 'the service is named <project>-<service>/<service>',
  hostname: 'the sandbox’s hostname is the layer name',
  labels: 'a layer has no labels',
  expose: "services listen on the host's network; every port they open is reachable",
};

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const failWith =
  (code: 'E_COMPOSE_INVALID' | 'E_COMPOSE_UNSUPPORTED'): Fail =>
  (at, problem) => {
    throw new LayerError(code, `Cannot import compose file: ${at}: ${problem}`, { details: { field: at } });
  };
const invalid: Fail = failWith('E_COMPOSE_INVALID');
const unsupported: Fail = failWith('E_COMPOSE_UNSUPPORTED');

/** A plain string, with `$$` as a literal `$`; interpolation (`${VAR}`, `$VAR`) is refused. */
function text(v: unknown, at: string): string {
  if (typeof v === 'number' || typeof v === 'boolean') v = String(v);
  if (typeof v !== 'string') return invalid(at, `expected a string, got ${typeof v}`);
  if (v.includes('\0')) invalid(at, 'must not contain NUL');
  if (/(^|[^$])(\$\$)*\$(\{|[A-Za-z_])/.test(v))
    unsupported(at, 'variable interpolation is not supported: write the value (or $$ for a literal $)');
  return v.replaceAll('$$', '$');
}

function strings(v: unknown, at: string): string[] {
  if (!Array.isArray(v)) return invalid(at, 'expected a list');
  return v.map((x, i) => text(x, `${at}[${i}]`));
}

function environment(v: unknown, at: string): string[] {
  const out: string[] = [];
  const one = (k: string, value: unknown, where: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) invalid(where, `${JSON.stringify(k)} is not a variable name`);
    if (value === null || value === undefined)
      unsupported(where, 'a variable taken from the environment of `compose up` has no value here: write it');
    out.push(`${k}=${text(value, where)}`);
  };
  if (Array.isArray(v))
    v.forEach((kv, i) => {
      const s = text(kv, `${at}[${i}]`);
      const eq = s.indexOf('=');
      one(eq < 0 ? s : s.slice(0, eq), eq < 0 ? null : s.slice(eq + 1), `${at}[${i}]`);
    });
  else if (isMap(v)) for (const [k, value] of Object.entries(v)) one(k, value, `${at}.${k}`);
  else invalid(at, 'expected a mapping or a list of NAME=VALUE');
  return out;
}

function capability(v: unknown, at: string): string {
  const s = text(v, at).toUpperCase();
  const cap = s === 'ALL' ? s : s.startsWith('CAP_') ? s : `CAP_${s}`;
  if (!/^(ALL|CAP_[A-Z_]{2,32})$/.test(cap)) invalid(at, `${JSON.stringify(v)} is not a capability name`);
  return cap;
}

function dependsOn(v: unknown, at: string, s: Pick<ComposeService, 'after' | 'requires' | 'notes'>): void {
  if (Array.isArray(v)) {
    strings(v, at).forEach((d) => {
      s.after.push(d);
      s.requires.push(d);
    });
    return;
  }
  if (!isMap(v)) invalid(at, 'expected a list of services or a mapping');
  for (const [dep, cond] of Object.entries(v)) {
    const where = `${at}.${dep}`;
    if (!isMap(cond)) invalid(where, 'expected a mapping with condition');
    for (const k of Object.keys(cond))
      if (!['condition', 'required', 'restart'].includes(k))
        unsupported(`${where}.${k}`, 'not a depends_on key');
    const c = cond.condition ?? 'service_started';
    if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(String(c)))
      invalid(`${where}.condition`, `${JSON.stringify(c)} is not a depends_on condition`);
    if (c === 'service_started')
      s.notes.push(`${where}.condition: service_started waits for ${dep} to be ready, as service_healthy`);
    s.after.push(dep);
    if (cond.required === false) continue;
    if (cond.required !== undefined && cond.required !== true)
      invalid(`${where}.required`, 'expected a boolean');
    s.requires.push(dep);
    if (cond.restart !== undefined)
      s.notes.push(`${where}.restart: ${dep} restarting does not restart this service`);
  }
}

/** Where a named volume is used: the key path, the service and its target. */
interface VolumeUse {
  at: string;
  service: ComposeService;
  target: string;
}

function service(name: string, raw: unknown, named: Map<string, VolumeUse[]>): ComposeService {
  const at = `services.${name}`;
  if (!NAME.test(name)) invalid(at, 'a service name must be a-z 0-9 . _ - (lowercase), at most 64');
  if (!isMap(raw)) return invalid(at, 'expected a mapping');
  const s: ComposeService = {
    name,
    image: '',
    config: {},
    volumes: [],
    shared: [],
    service: {},
    after: [],
    requires: [],
    capAdd: [],
    capDrop: [],
    notes: [],
  };
  for (const [key, v] of Object.entries(raw)) {
    const k = `${at}.${key}`;
    if (key.startsWith('x-')) continue;
    if (key in REFUSED) unsupported(k, `not supported: ${REFUSED[key]}`);
    if (key in IGNORED_NOTE) {
      s.notes.push(`${k}: not mapped (${IGNORED_NOTE[key]})`);
      continue;
    }
    switch (key) {
      case 'image':
        s.image = text(v, k);
        break;
      case 'command':
        s.config.Cmd = typeof v === 'string' ? commandWords(text(v, k), k, invalid) : strings(v, k);
        break;
      case 'entrypoint':
        s.config.Entrypoint = typeof v === 'string' ? commandWords(text(v, k), k, invalid) : strings(v, k);
        break;
      case 'environment':
        s.config.Env = environment(v, k);
        break;
      case 'user':
        s.config.User = text(v, k);
        break;
      case 'working_dir':
        s.config.WorkingDir = text(v, k);
        if (!s.config.WorkingDir.startsWith('/')) invalid(k, 'expected an absolute path');
        break;
      case 'stop_signal':
        s.config.StopSignal = text(v, k);
        break;
      case 'stop_grace_period':
        s.service.timeoutStopSec = durationSeconds(text(v, k), k, invalid);
        break;
      case 'restart':
        s.service.restart = mapRestart(text(v, k), k, invalid, s.notes);
        break;
      case 'healthcheck': {
        const r = healthReadiness(v, k, { invalid, unsupported, text, notes: s.notes });
        if (r !== undefined) s.service.readiness = r;
        break;
      }
      case 'ports':
        if (!Array.isArray(v)) invalid(k, 'expected a list');
        (v as unknown[]).forEach((p, i) => {
          const port = parsePort(p, `${k}[${i}]`, { invalid, unsupported, text });
          if (port.tcp && s.service.readiness === undefined && raw.healthcheck === undefined)
            s.service.readiness = { type: 'tcp', port: port.port };
        });
        break;
      case 'volumes':
        if (!Array.isArray(v)) invalid(k, 'expected a list');
        (v as unknown[]).forEach((m, i) => {
          const vol = parseVolume(m, `${k}[${i}]`, { invalid, unsupported, text });
          s.volumes.push(vol.target);
          if (vol.source !== undefined)
            named.set(vol.source, [
              ...(named.get(vol.source) ?? []),
              { at: `${k}[${i}]`, service: s, target: vol.target },
            ]);
        });
        break;
      case 'depends_on':
        dependsOn(v, k, s);
        break;
      case 'cap_add':
        s.capAdd = strings(v, k).map((c, i) => capability(c, `${k}[${i}]`));
        if (s.capAdd.includes('ALL')) unsupported(k, 'cap_add ALL: name the capabilities');
        break;
      case 'cap_drop':
        s.capDrop = strings(v, k).map((c, i) => capability(c, `${k}[${i}]`));
        break;
      case 'platform': {
        // As docker compose: the image of that platform from a multi-arch index (import-oci --arch).
        const arch = (
          { 'linux/amd64': 'x86_64', 'linux/arm64': 'aarch64', 'linux/arm64/v8': 'aarch64' } as const
        )[text(v, k) as 'linux/amd64'];
        if (arch === undefined) unsupported(k, `${JSON.stringify(v)}: a layer is linux/amd64 or linux/arm64`);
        s.architecture = arch;
        break;
      }
      default:
        unsupported(k, 'not supported (no layer equivalent)');
    }
  }
  // As `docker run --entrypoint`: a new entrypoint drops the image's Cmd unless command is given.
  if (s.config.Entrypoint !== undefined && s.config.Cmd === undefined) s.config.Cmd = [];
  if (s.image === '') invalid(`${at}.image`, 'every service needs an image');
  return s;
}

/** Parses and checks a compose file's text; `fallbackName` names a project the file does not. */
export function parseCompose(source: string, fallbackName: string): ComposeProject {
  if (Buffer.byteLength(source) > MAX_COMPOSE_BYTES)
    throw new LayerError('E_COMPOSE_YAML', `Cannot import compose file: over ${MAX_COMPOSE_BYTES} bytes`);
  // merge: compose files use YAML 1.1 merge keys (`<<: *defaults`); aliases are capped.
  const doc = parseDocument(source, { merge: true, uniqueKeys: true, prettyErrors: false });
  const e = doc.errors[0];
  if (e !== undefined)
    throw new LayerError('E_COMPOSE_YAML', `Cannot import compose file: ${e.message.split('\n')[0]}`, {
      details: { line: e.linePos?.[0]?.line ?? 0 },
    });
  let top: unknown;
  try {
    top = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new LayerError('E_COMPOSE_YAML', `Cannot import compose file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isMap(top)) throw new LayerError('E_COMPOSE_YAML', 'Cannot import compose file: not a mapping');
  const notes: string[] = [];
  for (const key of Object.keys(top)) {
    if (key.startsWith('x-') || ['name', 'services', 'volumes'].includes(key)) continue;
    if (key === 'version') notes.push('version: obsolete in the compose spec, ignored');
    else unsupported(key, key in REFUSED ? `not supported: ${REFUSED[key]}` : 'not supported');
  }
  const name = top.name === undefined ? fallbackName : text(top.name, 'name');
  if (!NAME.test(name) || name.length > 40)
    invalid('name', `${JSON.stringify(name)} is not a project name (a-z 0-9 . _ -, at most 40)`);
  const declared = top.volumes ?? {};
  if (!isMap(declared)) return invalid('volumes', 'expected a mapping');
  for (const [v, spec] of Object.entries(declared)) {
    if (spec !== null && !isMap(spec)) invalid(`volumes.${v}`, 'expected a mapping');
    for (const k of Object.keys(spec ?? {}))
      unsupported(`volumes.${v}.${k}`, 'volume options are not supported');
  }
  if (!isMap(top.services) || Object.keys(top.services).length === 0)
    return invalid('services', 'expected a mapping of at least one service');
  const named = new Map<string, VolumeUse[]>();
  const services = Object.entries(top.services).map(([n, raw]) => service(n, raw, named));
  for (const [v, uses] of named) {
    if (!(v in declared))
      invalid((uses[0] as VolumeUse).at, `volume ${JSON.stringify(v)} is not declared under volumes`);
    // A volume two or more services mount is the project's group data, group/<project>/
    // volumes/<volume>, which exactly the project's layers are members of; one only its
    // service mounts stays that layer's private data.
    if (new Set(uses.map((u) => u.service)).size > 1)
      for (const u of uses) {
        u.service.volumes = u.service.volumes.filter((p) => p !== u.target);
        u.service.shared.push({ volume: v, path: u.target });
      }
  }
  const known = new Set(services.map((s) => s.name));
  for (const s of services)
    s.after.forEach((d) => {
      if (!known.has(d)) invalid(`services.${s.name}.depends_on`, `names no service ${JSON.stringify(d)}`);
      if (d === s.name) invalid(`services.${s.name}.depends_on`, 'names the service itself');
    });
  return { name, services, notes };
}
