// The layer manifest (layer.json): what a layer is, what it needs and how the agent runs it.
// Its one definition is the schema below (common/schema.ts), from which the types, the
// defaults, the validator with key paths, doc/layer-manifest.schema.json (the packed, signed
// manifest) and doc/layer-source.schema.json (what a packager writes) all come
// (`npm run schemas`). The format version is checked first; after the schema pass a few
// cross-field rules are short checks here: semver ranges, unique names, what a service's
// after/requires/wants name, ordering cycles inside the layer, the payload's block count.
import semver from 'semver';
import { schema } from '../common/index.ts';
import { BLOCK_SIZE } from '../formats/index.ts';
import { LayerError } from './layer-error.ts';
import {
  ActionSchema,
  checkAction,
  type ModuleAction,
  VALUE_SCHEMA_DEFINITIONS,
  VerbSchema,
} from './module-action.ts';
import { completeService, MAX_LIST, NAME, named, ServiceSchema, type ServiceSpec, str } from './service.ts';

export type { Readiness, RestartPolicy, ServiceSpec } from './service.ts';

const { configObject, defineFormat, flag, int, list, object, oneOf, shown, v } = schema;
type Output<S extends schema.Schema> = schema.Output<S>;
type SchemaIssue = schema.SchemaIssue;

const about = <S extends schema.Schema>(s: S, description: string) => v.pipe(s, v.description(description));

/** The layer format this code writes and reads (doc/layer-format.md). */
export const LAYER_FORMAT = 2;
/** layer.json larger than this is refused before parsing. */
export const MAX_MANIFEST = 1024 * 1024;
/** policy.cil larger than this is refused. */
export const MAX_POLICY = 4 * 1024 * 1024;

// semver.org's own expression; semver.valid() then also refuses numbers past 2^53.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const semverText = () => named(SEMVER, 'a semantic version (1.2.3)', 256);
const sha256Hex = () => named(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const groupName = () => named(NAME, 'a group name');

const Dependency = object({
  name: named(NAME, 'a layer name'),
  range: about(v.optional(str(256), '*'), 'A semver range, e.g. ^3.0.0'),
});

const Data = object({
  private: about(v.optional(flag(), true), 'secure/<layer> at /data/secure'),
  groups: about(
    v.optional(list(groupName(), MAX_LIST), []),
    'group/<g> at /data/group/<g>, where the secure config grants it',
  ),
  common: about(v.optional(flag(), false), 'common/ at /data/common'),
});

/** What the manifest binds of the payload: its size and dm-verity tree (format 2; no whole-payload digest). */
const Payload = object({
  filesystem: oneOf(['erofs']),
  size: about(int(BLOCK_SIZE, 2 ** 44, 'a size in bytes'), 'payload.erofs in bytes, a multiple of 4096'),
  verity: object({
    rootHash: sha256Hex(),
    salt: named(/^([0-9a-f]{2}){0,256}$/, 'lowercase hex of at most 256 bytes'),
    dataBlocks: int(1, 2 ** 32, 'a number of blocks'),
    hashSize: int(BLOCK_SIZE, 2 ** 40, 'a size in bytes'),
    algorithm: oneOf(['sha256']),
    dataBlockSize: v.literal(BLOCK_SIZE),
    hashBlockSize: v.literal(BLOCK_SIZE),
  }),
});

const layerEntries = {
  name: named(NAME, 'a lowercase name (a-z 0-9 . _ -, starting with a letter or digit, at most 64)'),
  version: semverText(),
  kind: oneOf(['app', 'library', 'module']),
  architecture: v.optional(oneOf(['x86_64', 'aarch64', 'any']), 'x86_64'),
  description: v.optional(str(), ''),
  minCoreOs: about(v.exactOptional(semverText()), 'The oldest CoreOS version this layer runs on'),
  dependencies: about(
    v.optional(list(Dependency, MAX_LIST), []),
    'Library and module layers, by semver range',
  ),
  provides: about(
    v.optional(
      list(named(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/, 'a library or capability name'), MAX_LIST),
      [],
    ),
    'Library or capability names, e.g. libssl.so.3',
  ),
  groups: about(v.optional(list(groupName(), MAX_LIST), []), 'Layer groups it belongs to'),
  data: v.optional(Data, {}),
  services: about(v.optional(list(ServiceSchema, MAX_LIST), []), 'What the agent runs (none for a library)'),
  actions: about(
    v.optional(list(ActionSchema, MAX_LIST), []),
    'What a module lets an operator run on a peer (kind module only; doc/layer-format.md, "Modules")',
  ),
  verb: about(
    v.exactOptional(VerbSchema),
    'The top-level `mway` verb the module adds (kind module only): `mway VERB ACTION` runs its actions',
  ),
  source: about(
    v.exactOptional(
      object({
        ref: str(2048),
        digest: named(/^sha256:[0-9a-f]{64}$/, 'a sha256: digest'),
      }),
    ),
    'Provenance of an imported image: the reference it was fetched from and its manifest digest',
  ),
};

/** A packager's layer.json: `mway-layer pack` adds created, payload and policy. */
// A file a person writes: `$schema` lets an editor find doc/layer-source.schema.json (pack drops it).
const sourceSchema = configObject({
  format: v.optional(v.literal(LAYER_FORMAT), LAYER_FORMAT),
  ...layerEntries,
});

/** The signed layer.json inside a .mwl. */
const packedSchema = object({
  format: v.literal(LAYER_FORMAT),
  ...layerEntries,
  created: about(
    named(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/, 'an ISO 8601 UTC time'),
    'SOURCE_DATE_EPOCH as ISO 8601',
  ),
  payload: Payload,
  policy: about(
    v.exactOptional(object({ sha256: sha256Hex(), size: int(1, MAX_POLICY, 'a size in bytes') })),
    'policy.cil, when the layer has one',
  ),
});

type WithServices<T> = Omit<T, 'services' | 'actions'> & {
  services: ServiceSpec[];
  actions: ModuleAction[];
};
export type SourceManifest = WithServices<Output<typeof sourceSchema>>;
export type LayerManifest = WithServices<Output<typeof packedSchema>>;
export type LayerKind = LayerManifest['kind'];
export type PayloadInfo = LayerManifest['payload'];

function manifestError(issue: SchemaIssue): LayerError {
  return new LayerError(
    'E_MANIFEST_INVALID',
    `Cannot read layer manifest layer.json: ${issue.keyPath}: ${issue.problem}`,
    {
      path: 'layer.json',
      details: { field: issue.keyPath },
    },
  );
}

export const layerManifestFormat = defineFormat({
  name: 'layer-manifest',
  title: `MilkyWay layer manifest (layer.json inside a .mwl, format ${LAYER_FORMAT})`,
  schema: packedSchema,
  definitions: VALUE_SCHEMA_DEFINITIONS,
  error: manifestError,
});

export const layerSourceFormat = defineFormat({
  name: 'layer-source',
  title: `MilkyWay layer source manifest (layer.json as mway-layer pack reads it, format ${LAYER_FORMAT})`,
  schema: sourceSchema,
  definitions: VALUE_SCHEMA_DEFINITIONS,
  error: manifestError,
});

function fail(keyPath: string, problem: string): never {
  throw manifestError({ keyPath, problem });
}

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

function unique(items: readonly { name: string }[], path: string): void {
  const seen = new Set<string>();
  items.forEach((x, i) => {
    if (seen.has(x.name)) fail(`${path}[${i}]`, `repeats ${JSON.stringify(x.name)}`);
    seen.add(x.name);
  });
}

const REF_FIELDS = ['after', 'requires', 'wants'] as const;

/**
 * What a service's after/requires/wants name must exist: here, or in a dependency layer, or
 * — for a layer in a layer group (a compose project's services are one layer each) — in
 * another layer, which the agent orders and requires like any service it runs.
 */
function checkServiceRefs(
  m: Pick<SourceManifest, 'name' | 'dependencies' | 'groups'>,
  services: ServiceSpec[],
): void {
  services.forEach((s, i) => {
    for (const field of REF_FIELDS) {
      s[field].forEach((ref, j) => {
        const at = `services[${i}].${field}[${j}]`;
        const slash = ref.indexOf('/');
        const layer = slash < 0 ? m.name : ref.slice(0, slash);
        const name = slash < 0 ? ref : ref.slice(slash + 1);
        if (layer === m.name && name === s.name) fail(at, 'names the service itself');
        if (layer === m.name && !services.some((x) => x.name === name))
          fail(at, `names no service ${JSON.stringify(name)} of this layer`);
        if (layer !== m.name && !m.dependencies.some((d) => d.name === layer) && m.groups.length === 0)
          fail(
            at,
            `names layer ${JSON.stringify(layer)}, which is not a dependency (a layer in no group names only its own services and its dependencies')`,
          );
      });
    }
  });
}

/** An After= cycle inside the layer would never start; cycles across layers are resolve()'s. */
function checkOrderingCycles(layer: string, services: ServiceSpec[]): void {
  const index = new Map(services.map((s, i) => [s.name, i]));
  const local = (ref: string) => (ref.startsWith(`${layer}/`) ? ref.slice(layer.length + 1) : ref);
  const state = new Map<string, 'open' | 'done'>();
  const visit = (name: string, stack: string[]): void => {
    state.set(name, 'open');
    const i = index.get(name) as number;
    (services[i] as ServiceSpec).after.forEach((ref, j) => {
      const next = local(ref);
      if (next.includes('/')) return;
      if (state.get(next) === 'open')
        fail(
          `services[${i}].after[${j}]`,
          `closes an ordering cycle: ${[...stack.slice(stack.indexOf(next)), name, next].join(' → ')}`,
        );
      if (state.get(next) === undefined) visit(next, [...stack, name]);
    });
    state.set(name, 'done');
  };
  // At most MAX_LIST services, so the recursion is at most that deep.
  for (const s of services) if (state.get(s.name) === undefined) visit(s.name, []);
}

function crossChecks<
  M extends Omit<SourceManifest, 'services' | 'actions'> & {
    services: Output<typeof ServiceSchema>[];
    actions: Output<typeof ActionSchema>[];
  },
>(m: M): WithServices<M> {
  if (semver.valid(m.version) !== m.version)
    fail('version', `${shown(m.version)} is not a semantic version (1.2.3)`);
  if (m.minCoreOs !== undefined && semver.valid(m.minCoreOs) !== m.minCoreOs)
    fail('minCoreOs', `${shown(m.minCoreOs)} is not a semantic version`);
  m.dependencies.forEach((d, i) => {
    if (semver.validRange(d.range) === null)
      fail(`dependencies[${i}].range`, `${shown(d.range)} is not a semver range`);
  });
  unique(m.dependencies, 'dependencies');
  unique(m.services, 'services');
  unique(m.actions, 'actions');
  if (m.kind === 'library' && m.services.length > 0) fail('services', 'must be empty for a library layer');
  if (m.kind !== 'module' && m.actions.length > 0) fail('actions', `must be empty for a ${m.kind} layer`);
  if (m.kind !== 'module' && m.verb !== undefined) fail('verb', `only a module declares a verb`);
  const services = m.services.map((s, i) => completeService(s, `services[${i}].`, fail));
  for (const [i, s] of services.entries()) {
    for (const [j, g] of s.groupVolumes.entries())
      if (!m.data.groups.includes(g.group))
        fail(`services[${i}].groupVolumes[${j}].group`, `${g.group} is not one of data.groups`);
  }
  checkServiceRefs(m, services);
  checkOrderingCycles(m.name, services);
  // The schema pass checked each node's shape; the types of args/output are its output.
  const actions = m.actions as unknown as ModuleAction[];
  actions.forEach((a, i) => {
    checkAction(a, `actions[${i}].`, m.data, fail);
  });
  return { ...m, services, actions };
}

export interface ValidateOptions {
  /** A packager's source manifest: payload, policy and created are absent (pack adds them). */
  source?: boolean;
}

/**
 * Checks `json` (parsed JSON) as a manifest and returns it with every default filled.
 * Throws LayerError E_MANIFEST_INVALID with `details.field` = the offending key path.
 */
export function validateManifest(json: unknown, options: { source: true }): SourceManifest;
export function validateManifest(json: unknown, options?: ValidateOptions): LayerManifest;
export function validateManifest(
  json: unknown,
  options: ValidateOptions = {},
): LayerManifest | SourceManifest {
  const source = options.source === true;
  checkFormat(json, source);
  if (source) return crossChecks(layerSourceFormat.parse(json));
  const m = crossChecks(layerManifestFormat.parse(json));
  if (m.payload.size % BLOCK_SIZE !== 0) fail('payload.size', `must be a multiple of ${BLOCK_SIZE}`);
  if (m.payload.verity.dataBlocks * BLOCK_SIZE !== m.payload.size)
    fail('payload.verity.dataBlocks', `must be size / ${BLOCK_SIZE} = ${m.payload.size / BLOCK_SIZE}`);
  return m;
}

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
