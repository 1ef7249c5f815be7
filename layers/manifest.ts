// The layer manifest (layer.json): what a layer is, what it needs and how the agent runs
// it. `validateManifest` is the single gate: strict shape, no unknown fields, defaults
// filled, and every error names the offending field path (doc/layer-manifest.schema.json).
import semver from 'semver';
import { BLOCK_SIZE } from '../formats/index.ts';
import type { LayerCode } from './layer-codes.ts';
import { LayerError } from './layer-error.ts';

export type LayerKind = 'app' | 'library' | 'module';
export type Architecture = 'x86_64' | 'aarch64' | 'any';
export type RestartPolicy = 'no' | 'on-failure' | 'always';

export type Readiness =
  | { type: 'none' }
  | { type: 'notify' }
  | { type: 'tcp'; port: number; host: string }
  | { type: 'exec'; argv: string[]; intervalMs: number };

export interface ServiceSpec {
  name: string;
  argv: string[];
  env: Record<string, string>;
  workingDirectory: string;
  user: string;
  group: string;
  restart: {
    policy: RestartPolicy;
    backoffMs: number;
    maxBackoffMs: number;
    burst: number;
    intervalMs: number;
  };
  readiness: Readiness;
  startTimeoutMs: number;
  /** Services started first: `svc` in this layer or `layer/svc` in a dependency. */
  after: string[];
  stopSignal: string;
  stopTimeoutMs: number;
  /** Capabilities kept (CAP_NET_BIND_SERVICE …); everything else is dropped. */
  capabilities: string[];
  limits: { memoryBytes?: number; pids?: number; cpuWeight?: number };
  network: 'host' | 'none';
}

export interface ActionSpec {
  name: string;
  argv: string[];
  description: string;
}

export interface Dependency {
  name: string;
  /** semver range, e.g. "^3.0.0". */
  range: string;
}

/**
 * What the manifest binds of the payload (format 2): its size and its dm-verity tree. The
 * root hash covers every data block, so there is no whole-payload digest (format 1 had one).
 */
export interface PayloadInfo {
  filesystem: 'erofs';
  size: number;
  verity: {
    rootHash: string;
    salt: string;
    dataBlocks: number;
    hashSize: number;
    algorithm: 'sha256';
    dataBlockSize: typeof BLOCK_SIZE;
    hashBlockSize: typeof BLOCK_SIZE;
  };
}

/** The layer format this code writes and reads (doc/layer-format.md). */
export const LAYER_FORMAT = 2;

export interface LayerManifest {
  format: typeof LAYER_FORMAT;
  name: string;
  version: string;
  kind: LayerKind;
  architecture: Architecture;
  description: string;
  /** ISO time of SOURCE_DATE_EPOCH. */
  created: string;
  minCoreOs: string | undefined;
  payload: PayloadInfo;
  policy: { sha256: string; size: number } | undefined;
  dependencies: Dependency[];
  provides: string[];
  groups: string[];
  data: { private: boolean; groups: string[]; common: boolean };
  services: ServiceSpec[];
  actions: ActionSpec[];
}

/** A manifest as a packager writes it: pack fills in payload, policy and created. */
export type SourceManifest = Omit<LayerManifest, 'payload' | 'policy' | 'created'>;

/** layer.json larger than this is refused before parsing. */
export const MAX_MANIFEST = 1024 * 1024;
const MAX_LIST = 256;
const MAX_STR = 4096;

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SIGNALS = new Set([
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
  'SIGHUP',
  'SIGKILL',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGPWR',
]);
const CAP = /^CAP_[A-Z_]{2,32}$/;

type Obj = Record<string, unknown>;

function fail(path: string, message: string, code: LayerCode = 'E_MANIFEST_INVALID'): never {
  throw new LayerError(code, `layer.json: ${path} ${message}`, {
    path: 'layer.json',
    details: { field: path },
  });
}

function obj(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object');
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) fail(path === '' ? k : `${path}.${k}`, 'is not a known field');
  }
  return v as Obj;
}

function str(v: unknown, path: string, re?: RegExp, what?: string): string {
  if (typeof v !== 'string') fail(path, 'must be a string');
  if (v.length > MAX_STR) fail(path, `is longer than ${MAX_STR} characters`);
  if (v.includes('\0')) fail(path, 'must not contain NUL');
  if (re !== undefined && !re.test(v))
    fail(path, `must be ${what ?? `like ${re}`}, got ${JSON.stringify(v)}`);
  return v;
}

function optStr(v: unknown, path: string, dflt: string): string {
  return v === undefined ? dflt : str(v, path);
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(path, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function optInt(v: unknown, path: string, min: number, max: number, dflt: number): number {
  return v === undefined ? dflt : int(v, path, min, max);
}

function bool(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') fail(path, 'must be true or false');
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, values: readonly T[], dflt?: T): T {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    fail(path, `must be one of ${values.join(', ')}`);
  }
  return v as T;
}

function list<T>(
  v: unknown,
  path: string,
  item: (x: unknown, p: string) => T,
  opts: { min?: number } = {},
): T[] {
  if (v === undefined && (opts.min ?? 0) === 0) return [];
  if (!Array.isArray(v)) fail(path, 'must be an array');
  if (v.length > MAX_LIST) fail(path, `has more than ${MAX_LIST} entries`);
  if (v.length < (opts.min ?? 0)) fail(path, `must have at least ${opts.min} entries`);
  return v.map((x, i) => item(x, `${path}[${i}]`));
}

function uniqueNames<T>(items: T[], key: (t: T) => string, path: string): void {
  const seen = new Set<string>();
  items.forEach((t, i) => {
    const k = key(t);
    if (seen.has(k)) fail(`${path}[${i}]`, `repeats ${JSON.stringify(k)}`);
    seen.add(k);
  });
}

const argvOf = (v: unknown, p: string) => list(v, p, (x, q) => str(x, q), { min: 1 });

function readiness(v: unknown, path: string): Readiness {
  if (v === undefined) return { type: 'none' };
  const o = obj(v, path, ['type', 'port', 'host', 'argv', 'intervalMs']);
  const type = oneOf(o.type, `${path}.type`, ['none', 'notify', 'tcp', 'exec'] as const);
  const extra = (allowed: string[]) => {
    for (const k of Object.keys(o))
      if (k !== 'type' && !allowed.includes(k)) fail(`${path}.${k}`, `is not used with type ${type}`);
  };
  switch (type) {
    case 'none':
    case 'notify':
      extra([]);
      return { type };
    case 'tcp':
      extra(['port', 'host']);
      return {
        type,
        port: int(o.port, `${path}.port`, 1, 65535),
        host: optStr(o.host, `${path}.host`, '127.0.0.1'),
      };
    case 'exec':
      extra(['argv', 'intervalMs']);
      return {
        type,
        argv: argvOf(o.argv, `${path}.argv`),
        intervalMs: optInt(o.intervalMs, `${path}.intervalMs`, 100, 3_600_000, 1000),
      };
  }
}

function env(v: unknown, path: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object of strings');
  const out: Record<string, string> = {};
  const keys = Object.keys(v).sort();
  if (keys.length > MAX_LIST) fail(path, `has more than ${MAX_LIST} entries`);
  for (const k of keys) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(`${path}.${k}`, 'is not a valid environment variable name');
    out[k] = str((v as Obj)[k], `${path}.${k}`);
  }
  return out;
}

function service(v: unknown, path: string): ServiceSpec {
  const o = obj(v, path, [
    'name',
    'argv',
    'env',
    'workingDirectory',
    'user',
    'group',
    'restart',
    'readiness',
    'startTimeoutMs',
    'after',
    'stopSignal',
    'stopTimeoutMs',
    'capabilities',
    'limits',
    'network',
  ]);
  const r = obj(o.restart ?? {}, `${path}.restart`, [
    'policy',
    'backoffMs',
    'maxBackoffMs',
    'burst',
    'intervalMs',
  ]);
  const l = obj(o.limits ?? {}, `${path}.limits`, ['memoryBytes', 'pids', 'cpuWeight']);
  const limits: ServiceSpec['limits'] = {};
  if (l.memoryBytes !== undefined)
    limits.memoryBytes = int(l.memoryBytes, `${path}.limits.memoryBytes`, 1 << 20, 2 ** 50);
  if (l.pids !== undefined) limits.pids = int(l.pids, `${path}.limits.pids`, 1, 4_194_304);
  if (l.cpuWeight !== undefined) limits.cpuWeight = int(l.cpuWeight, `${path}.limits.cpuWeight`, 1, 10_000);
  const backoffMs = optInt(r.backoffMs, `${path}.restart.backoffMs`, 0, 3_600_000, 100);
  const maxBackoffMs = optInt(r.maxBackoffMs, `${path}.restart.maxBackoffMs`, 0, 3_600_000, 30_000);
  if (maxBackoffMs < backoffMs) fail(`${path}.restart.maxBackoffMs`, 'must not be below backoffMs');
  const user = optStr(o.user, `${path}.user`, 'nobody');
  const spec: ServiceSpec = {
    name: str(o.name, `${path}.name`, NAME, 'a lowercase name (a-z 0-9 . _ -, at most 64)'),
    argv: argvOf(o.argv, `${path}.argv`),
    env: env(o.env, `${path}.env`),
    workingDirectory: optStr(o.workingDirectory, `${path}.workingDirectory`, '/'),
    user,
    group: optStr(o.group, `${path}.group`, user === 'nobody' ? 'nogroup' : user),
    restart: {
      policy: oneOf(
        r.policy,
        `${path}.restart.policy`,
        ['no', 'on-failure', 'always'] as const,
        'on-failure',
      ),
      backoffMs,
      maxBackoffMs,
      burst: optInt(r.burst, `${path}.restart.burst`, 1, 1000, 5),
      intervalMs: optInt(r.intervalMs, `${path}.restart.intervalMs`, 1, 86_400_000, 10_000),
    },
    readiness: readiness(o.readiness, `${path}.readiness`),
    startTimeoutMs: optInt(o.startTimeoutMs, `${path}.startTimeoutMs`, 1, 3_600_000, 90_000),
    after: list(o.after, `${path}.after`, (x, p) =>
      str(x, p, /^([a-z0-9][a-z0-9._-]{0,63}\/)?[a-z0-9][a-z0-9._-]{0,63}$/, '"service" or "layer/service"'),
    ),
    stopSignal: oneOf(o.stopSignal, `${path}.stopSignal`, [...SIGNALS], 'SIGTERM'),
    stopTimeoutMs: optInt(o.stopTimeoutMs, `${path}.stopTimeoutMs`, 1, 3_600_000, 10_000),
    capabilities: list(o.capabilities, `${path}.capabilities`, (x, p) =>
      str(x, p, CAP, 'a capability name like CAP_NET_BIND_SERVICE'),
    ),
    limits,
    network: oneOf(o.network, `${path}.network`, ['host', 'none'] as const, 'host'),
  };
  if (!spec.workingDirectory.startsWith('/')) fail(`${path}.workingDirectory`, 'must be an absolute path');
  return spec;
}

function sha256Hex(v: unknown, path: string): string {
  return str(v, path, /^[0-9a-f]{64}$/, '64 lowercase hex digits');
}

function payload(v: unknown, path: string): PayloadInfo {
  const o = obj(v, path, ['filesystem', 'size', 'verity']);
  const ve = obj(o.verity, `${path}.verity`, [
    'rootHash',
    'salt',
    'dataBlocks',
    'hashSize',
    'algorithm',
    'dataBlockSize',
    'hashBlockSize',
  ]);
  const size = int(o.size, `${path}.size`, BLOCK_SIZE, 2 ** 44);
  if (size % BLOCK_SIZE !== 0) fail(`${path}.size`, `must be a multiple of ${BLOCK_SIZE}`);
  const dataBlocks = int(ve.dataBlocks, `${path}.verity.dataBlocks`, 1, 2 ** 32);
  if (dataBlocks * BLOCK_SIZE !== size)
    fail(`${path}.verity.dataBlocks`, `must be size / ${BLOCK_SIZE} = ${size / BLOCK_SIZE}`);
  if (ve.dataBlockSize !== BLOCK_SIZE) fail(`${path}.verity.dataBlockSize`, `must be ${BLOCK_SIZE}`);
  if (ve.hashBlockSize !== BLOCK_SIZE) fail(`${path}.verity.hashBlockSize`, `must be ${BLOCK_SIZE}`);
  return {
    filesystem: oneOf(o.filesystem, `${path}.filesystem`, ['erofs'] as const),
    size,
    verity: {
      rootHash: sha256Hex(ve.rootHash, `${path}.verity.rootHash`),
      salt: str(ve.salt, `${path}.verity.salt`, /^([0-9a-f]{2}){0,256}$/, 'lowercase hex, at most 256 bytes'),
      dataBlocks,
      hashSize: int(ve.hashSize, `${path}.verity.hashSize`, BLOCK_SIZE, 2 ** 40),
      algorithm: oneOf(ve.algorithm, `${path}.verity.algorithm`, ['sha256'] as const),
      dataBlockSize: BLOCK_SIZE,
      hashBlockSize: BLOCK_SIZE,
    },
  };
}

const SOURCE_KEYS = [
  'format',
  'name',
  'version',
  'kind',
  'architecture',
  'description',
  'minCoreOs',
  'dependencies',
  'provides',
  'groups',
  'data',
  'services',
  'actions',
];

/**
 * The format version comes first: a manifest of another format is refused as such
 * (E_LAYER_FORMAT naming its version), not as a list of fields this reader does not know.
 * A source manifest may leave it out (pack writes the current one).
 */
function checkFormat(json: unknown, source: boolean): void {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return;
  const f = (json as { format?: unknown }).format;
  if (f === LAYER_FORMAT || (source && f === undefined)) return;
  const which = f === undefined ? 'has no format version' : `is format ${JSON.stringify(f)}`;
  throw new LayerError(
    'E_LAYER_FORMAT',
    `layer.json ${which}; this version reads and writes layer format ${LAYER_FORMAT} only (the manifest binds the verity root hash and payload size, no payload SHA-256): repack the layer with mway-layer pack`,
    { path: 'layer.json', details: { field: 'format', format: f ?? null, supported: LAYER_FORMAT } },
  );
}

export interface ValidateOptions {
  /** A packager's source manifest: payload, policy and created are absent (pack adds them). */
  source?: boolean;
}

/**
 * Checks `json` (parsed JSON) as a manifest and returns it with every default filled.
 * Throws LayerError E_MANIFEST_INVALID with `details.field` = the offending field path.
 */
export function validateManifest(json: unknown, options: { source: true }): SourceManifest;
export function validateManifest(json: unknown, options?: ValidateOptions): LayerManifest;
export function validateManifest(
  json: unknown,
  options: ValidateOptions = {},
): LayerManifest | SourceManifest {
  const source = options.source === true;
  checkFormat(json, source);
  const o = obj(json, '', source ? SOURCE_KEYS : [...SOURCE_KEYS, 'created', 'payload', 'policy']);
  const version = str(o.version, 'version');
  if (semver.valid(version) !== version)
    fail('version', `must be a semantic version (1.2.3), got ${JSON.stringify(version)}`);
  let minCoreOs: string | undefined;
  if (o.minCoreOs !== undefined) {
    minCoreOs = str(o.minCoreOs, 'minCoreOs');
    if (semver.valid(minCoreOs) !== minCoreOs) fail('minCoreOs', 'must be a semantic version');
  }
  const kind = oneOf(o.kind, 'kind', ['app', 'library', 'module'] as const);
  const data = obj(o.data ?? {}, 'data', ['private', 'groups', 'common']);
  const services = list(o.services, 'services', service);
  uniqueNames(services, (s) => s.name, 'services');
  const actions = list(o.actions, 'actions', (v, p) => {
    const a = obj(v, p, ['name', 'argv', 'description']);
    return {
      name: str(a.name, `${p}.name`, NAME, 'a lowercase name'),
      argv: argvOf(a.argv, `${p}.argv`),
      description: optStr(a.description, `${p}.description`, ''),
    };
  });
  uniqueNames(actions, (a) => a.name, 'actions');
  const dependencies = list(o.dependencies, 'dependencies', (v, p) => {
    const d = obj(v, p, ['name', 'range']);
    const range = str(d.range ?? '*', `${p}.range`);
    if (semver.validRange(range) === null)
      fail(`${p}.range`, `is not a semver range: ${JSON.stringify(range)}`);
    return { name: str(d.name, `${p}.name`, NAME, 'a layer name'), range };
  });
  uniqueNames(dependencies, (d) => d.name, 'dependencies');
  const base: SourceManifest = {
    format: LAYER_FORMAT,
    name: str(
      o.name,
      'name',
      NAME,
      'a lowercase name (a-z 0-9 . _ -, starting with a letter or digit, at most 64)',
    ),
    version,
    kind,
    architecture: oneOf(o.architecture, 'architecture', ['x86_64', 'aarch64', 'any'] as const, 'x86_64'),
    description: optStr(o.description, 'description', ''),
    minCoreOs,
    dependencies,
    provides: list(o.provides, 'provides', (x, p) =>
      str(x, p, /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/, 'a library or capability name'),
    ),
    groups: list(o.groups, 'groups', (x, p) => str(x, p, NAME, 'a group name')),
    data: {
      private: bool(data.private, 'data.private', true),
      groups: list(data.groups, 'data.groups', (x, p) => str(x, p, NAME, 'a group name')),
      common: bool(data.common, 'data.common', false),
    },
    services,
    actions,
  };
  if (kind === 'library' && services.length > 0) fail('services', 'must be empty for a library layer');
  for (const [i, s] of services.entries()) {
    s.after.forEach((a, j) => {
      if (!a.includes('/') && !services.some((x) => x.name === a))
        fail(`services[${i}].after[${j}]`, `names no service ${JSON.stringify(a)} of this layer`);
      if (a === s.name) fail(`services[${i}].after[${j}]`, 'names the service itself');
      const dep = a.split('/')[0] as string;
      if (a.includes('/') && dep !== base.name && !dependencies.some((d) => d.name === dep)) {
        fail(`services[${i}].after[${j}]`, `names layer ${JSON.stringify(dep)}, which is not a dependency`);
      }
    });
  }
  if (source) return base;
  const created = str(
    o.created,
    'created',
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/,
    'an ISO 8601 UTC time',
  );
  let policy: LayerManifest['policy'];
  if (o.policy !== undefined) {
    const p = obj(o.policy, 'policy', ['sha256', 'size']);
    policy = {
      sha256: sha256Hex(p.sha256, 'policy.sha256'),
      size: int(p.size, 'policy.size', 1, MAX_POLICY),
    };
  }
  return { ...base, created, payload: payload(o.payload, 'payload'), policy };
}

/** policy.cil larger than this is refused. */
export const MAX_POLICY = 4 * 1024 * 1024;

/** Parses layer.json bytes with the size cap, then validates. */
export function parseManifest(bytes: Uint8Array, options: ValidateOptions = {}): LayerManifest {
  if (bytes.length > MAX_MANIFEST) {
    throw new LayerError(
      'E_MANIFEST_TOO_LARGE',
      `layer.json is ${bytes.length} bytes, at most ${MAX_MANIFEST} allowed`,
      { path: 'layer.json' },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new LayerError('E_MANIFEST_JSON', `layer.json is not UTF-8 JSON: ${(e as Error).message}`, {
      path: 'layer.json',
      cause: e,
    });
  }
  return validateManifest(json, options) as LayerManifest;
}

/** The manifest as JSON for signing: undefined fields dropped (canonicalJson refuses them). */
export function manifestJson(m: LayerManifest): Record<string, unknown> {
  return JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
}
