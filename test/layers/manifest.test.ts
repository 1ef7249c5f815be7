// The layer manifest (layers/manifest.ts, layers/service.ts): defaults, key paths, the format
// check, a table of hostile inputs refused with E_MANIFEST_INVALID and a key path, every key
// path of a valid manifest mutated, the cross-field rules, and doc/layer-manifest.schema.json
// and doc/layer-source.schema.json cross-checked with Ajv.
import test from 'ava';
import { LayerError, parseService, validateManifest } from '../../layers/index.ts';
import { assertMutationsRefusedCleanly, assertRefused, deep, publishedValidator } from '../schema-fixture.ts';

const source = {
  name: 'web',
  version: '1.2.3',
  kind: 'app',
  dependencies: [{ name: 'libssl', range: '^3.0.0' }],
  services: [
    { name: 'db', execStart: ['/bin/db'], type: 'notify' },
    {
      name: 'http',
      execStart: ['/bin/httpd', '-p', '8080'],
      readiness: { type: 'tcp', port: 8080 },
      requires: ['db'],
      after: ['db'],
    },
  ],
};

const packed = {
  ...source,
  format: 2,
  created: '2024-01-01T00:00:00.000Z',
  payload: {
    filesystem: 'erofs',
    size: 8192,
    verity: {
      rootHash: '1'.repeat(64),
      salt: 'ab'.repeat(32),
      dataBlocks: 2,
      hashSize: 8192,
      algorithm: 'sha256',
      dataBlockSize: 4096,
      hashBlockSize: 4096,
    },
  },
  policy: { sha256: '2'.repeat(64), size: 100 },
};

const publishedSource = publishedValidator('layer-source');
const publishedPacked = publishedValidator('layer-manifest');

function thrownBy(f: () => unknown): LayerError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof LayerError) return e;
    throw e;
  }
  return undefined;
}

/** `source` with `patch` applied to a deep copy. */
function patched(patch: (m: Record<string, unknown> & { services: Record<string, unknown>[] }) => void) {
  const m = structuredClone(source) as Record<string, unknown> & { services: Record<string, unknown>[] };
  patch(m);
  return m;
}

test('a source manifest gets every default filled, in the systemd vocabulary', (t) => {
  const m = validateManifest(source, { source: true });
  const [db, http] = m.services;
  t.deepEqual(http, {
    name: 'http',
    execStart: ['/bin/httpd', '-p', '8080'],
    type: 'simple',
    readiness: { type: 'tcp', port: 8080, host: '127.0.0.1' },
    environment: {},
    workingDirectory: '/',
    user: 'nobody',
    group: 'nogroup',
    restart: 'on-failure',
    restartSec: 0.1,
    restartMaxDelaySec: 30,
    startLimitBurst: 5,
    startLimitIntervalSec: 10,
    timeoutStartSec: 90,
    killSignal: 'SIGTERM',
    after: ['db'],
    requires: ['db'],
    wants: [],
    capabilityBoundingSet: [],
    privateNetwork: false,
    devices: [],
    writableRoot: 'no',
    volumes: [],
    groupVolumes: [],
  });
  t.is(db?.type, 'notify');
  t.is(db?.readiness, undefined);
  t.is(m.architecture, 'x86_64');
  t.deepEqual(m.data, { private: true, groups: [], common: false });
  t.is(m.format, 2);
  t.is(
    validateManifest(
      { ...source, services: [{ name: 'x', execStart: ['/x'], user: 'www' }] },
      { source: true },
    ).services[0]?.group,
    'www',
  );
  t.true(publishedSource(source));
  t.true(publishedPacked(packed));
  t.deepEqual(validateManifest(packed).policy, packed.policy);
});

test('parseService() fills the same defaults for a service alone', (t) => {
  const s = parseService({ name: 'x', execStart: ['/x'] });
  const m = validateManifest({ ...source, services: [{ name: 'x', execStart: ['/x'] }] }, { source: true });
  t.deepEqual(s, m.services[0]);
  t.is(thrownBy(() => parseService({ name: 'x' }))?.details?.field, 'execStart');
});

// Refused by the schema: the code and Ajv (reading the published schema) both refuse them.
const hostile: [string, unknown, string][] = [
  ['a top-level array', [], '(top level)'],
  ['null', null, '(top level)'],
  ['an unknown key', { ...source, extra: 1 }, 'extra'],
  ['__proto__', JSON.parse('{"name":"w","version":"1.0.0","kind":"app","__proto__":{"x":1}}'), '__proto__'],
  ['a bad version', { ...source, version: '1.2' }, 'version'],
  ['a kind not known', { ...source, kind: 'daemon' }, 'kind'],
  ['a name with a slash', { ...source, name: '../x' }, 'name'],
  ['a name of 65 characters', { ...source, name: 'a'.repeat(65) }, 'name'],
  [
    'an old restart object',
    patched((m) => (m.services[1]!.restart = { policy: 'always' })),
    'services[1].restart',
  ],
  [
    'a restart policy not known',
    patched((m) => (m.services[1]!.restart = 'sometimes')),
    'services[1].restart',
  ],
  ['the old argv', patched((m) => (m.services[0]!.argv = ['/x'])), 'services[0].argv'],
  ['a relative volume', patched((m) => (m.services[0]!.volumes = ['var/lib'])), 'services[0].volumes[0]'],
  ['a volume with ..', patched((m) => (m.services[0]!.volumes = ['/var/../etc'])), 'services[0].volumes[0]'],
  [
    'a writable root not known',
    patched((m) => (m.services[0]!.writableRoot = 'yes')),
    'services[0].writableRoot',
  ],
  ['an empty execStart', patched((m) => (m.services[0]!.execStart = [])), 'services[0].execStart'],
  [
    '257 arguments',
    patched((m) => (m.services[0]!.execStart = Array(257).fill('a'))),
    'services[0].execStart',
  ],
  [
    'a NUL in an argument',
    patched((m) => (m.services[0]!.execStart = ['/x', 'a\0b'])),
    'services[0].execStart[1]',
  ],
  [
    'a port of 70000',
    patched((m) => (m.services[1]!.readiness = { type: 'tcp', port: 70000 })),
    'services[1].readiness.port',
  ],
  [
    'a readiness type not known',
    patched((m) => (m.services[1]!.readiness = { type: 'http' })),
    'services[1].readiness.type',
  ],
  [
    'a probe field on a tcp check',
    patched((m) => (m.services[1]!.readiness = { type: 'tcp', port: 1, command: ['x'] })),
    'services[1].readiness.command',
  ],
  [
    'an exec probe without command',
    patched((m) => (m.services[1]!.readiness = { type: 'exec' })),
    'services[1].readiness.command',
  ],
  ['Type=forking', patched((m) => (m.services[0]!.type = 'forking')), 'services[0].type'],
  ['negative restartSec', patched((m) => (m.services[0]!.restartSec = -1)), 'services[0].restartSec'],
  [
    'Infinity (1e999) as timeoutStopSec',
    JSON.parse(
      '{"name":"w","version":"1.0.0","kind":"app","services":[{"name":"a","execStart":["/a"],"timeoutStopSec":1e999}]}',
    ),
    'services[0].timeoutStopSec',
  ],
  ['timeoutStartSec 0', patched((m) => (m.services[0]!.timeoutStartSec = 0)), 'services[0].timeoutStartSec'],
  [
    'a fractional burst',
    patched((m) => (m.services[0]!.startLimitBurst = 1.5)),
    'services[0].startLimitBurst',
  ],
  ['a signal not known', patched((m) => (m.services[0]!.killSignal = 'SIGSTOP')), 'services[0].killSignal'],
  [
    'a capability in lower case',
    patched((m) => (m.services[0]!.capabilityBoundingSet = ['net_admin'])),
    'services[0].capabilityBoundingSet[0]',
  ],
  ['memoryMax below 1 MiB', patched((m) => (m.services[0]!.memoryMax = 1000)), 'services[0].memoryMax'],
  ['tasksMax 0', patched((m) => (m.services[0]!.tasksMax = 0)), 'services[0].tasksMax'],
  ['cpuWeight 2^60', patched((m) => (m.services[0]!.cpuWeight = 2 ** 60)), 'services[0].cpuWeight'],
  ['the old limits object', patched((m) => (m.services[0]!.limits = {})), 'services[0].limits'],
  ['the old network field', patched((m) => (m.services[0]!.network = 'none')), 'services[0].network'],
  [
    'privateNetwork as a string',
    patched((m) => (m.services[0]!.privateNetwork = 'yes')),
    'services[0].privateNetwork',
  ],
  [
    'a relative workingDirectory',
    patched((m) => (m.services[0]!.workingDirectory = 'srv')),
    'services[0].workingDirectory',
  ],
  [
    'an environment name with a space',
    patched((m) => (m.services[0]!.environment = { 'A B': 'x' })),
    'services[0].environment["A B"]',
  ],
  [
    'an environment value not a string',
    patched((m) => (m.services[0]!.environment = { A: 1 })),
    'services[0].environment.A',
  ],
  [
    'an after entry with two slashes',
    patched((m) => (m.services[1]!.after = ['a/b/c'])),
    'services[1].after[0]',
  ],
  [
    'a deep object as a service',
    patched((m) => (m.services[0] = deep(50_000) as Record<string, unknown>)),
    'services[0].name',
  ],
  ['257 services', { ...source, services: Array(257).fill(source.services[0]) }, 'services'],
  ['data an array', { ...source, data: [] }, 'data'],
  ['an action without argv', { ...source, actions: [{ name: 'x' }] }, 'actions[0].argv'],
];
for (const [what, raw, keyPath] of hostile) {
  test(`validateManifest() refuses ${what} naming ${keyPath}`, (t) => {
    assertRefused(t, () => validateManifest(raw, { source: true }), 'E_MANIFEST_INVALID', keyPath, what);
    t.false(publishedSource(raw), 'doc/layer-source.schema.json (Ajv) refuses it too');
  });
}

// Cross-field rules, checked after the schema pass: the published schema cannot state them.
const crossField: [string, unknown, string][] = [
  ['a repeated service name', patched((m) => (m.services[0]!.name = 'http')), 'services[1]'],
  ['an after naming no service', patched((m) => (m.services[1]!.after = ['nope'])), 'services[1].after[0]'],
  [
    'a requires naming itself',
    patched((m) => (m.services[1]!.requires = ['http'])),
    'services[1].requires[0]',
  ],
  [
    'a wants naming a layer that is no dependency',
    patched((m) => (m.services[1]!.wants = ['other/x'])),
    'services[1].wants[0]',
  ],
  ['an ordering cycle', patched((m) => (m.services[0]!.after = ['web/http'])), 'services[1].after[0]'],
  [
    'restartMaxDelaySec below restartSec',
    patched((m) => Object.assign(m.services[0]!, { restartSec: 5, restartMaxDelaySec: 1 })),
    'services[0].restartMaxDelaySec',
  ],
  [
    'a tcp probe in a private network',
    patched((m) => (m.services[1]!.privateNetwork = true)),
    'services[1].readiness',
  ],
  [
    'a bad dependency range',
    patched((m) => ((m.dependencies as { range: string }[])[0]!.range = '>>1')),
    'dependencies[0].range',
  ],
  ['a version past 2^53', { ...source, version: '99999999999999999999.0.0' }, 'version'],
  ['a library with services', { ...source, kind: 'library' }, 'services'],
];
for (const [what, raw, keyPath] of crossField) {
  test(`validateManifest() refuses ${what} naming ${keyPath} (a cross-field rule)`, (t) => {
    assertRefused(t, () => validateManifest(raw, { source: true }), 'E_MANIFEST_INVALID', keyPath, what);
  });
}

test('a layer in a layer group may order and require a service of another layer (a compose project)', (t) => {
  const inGroup = patched((m) => {
    m.groups = ['shop'];
    m.services[1]!.after = ['shop-db/db'];
    m.services[1]!.requires = ['shop-db/db'];
  });
  const m = validateManifest(inGroup, { source: true });
  t.deepEqual(m.services[1]?.requires, ['shop-db/db']);
  // Without a group the same reference is refused, naming the key path.
  assertRefused(
    t,
    () => validateManifest({ ...(inGroup as object), groups: [] }, { source: true }),
    'E_MANIFEST_INVALID',
    'services[1].after[0]',
    'a reference to another layer outside a group',
  );
});

test('an ordering cycle names its services in order', (t) => {
  const e = thrownBy(() =>
    validateManifest(
      patched((m) => {
        m.services.push({ name: 'cache', execStart: ['/c'], after: ['http'] });
        m.services[0]!.after = ['cache'];
      }),
      { source: true },
    ),
  );
  t.regex(
    e?.message ?? '',
    /closes an ordering cycle: (db → cache → http → db|cache → http → db → cache|http → db → cache → http)/,
  );
  // requires without after is no ordering: a requirement cycle is allowed, as in systemd.
  t.notThrows(() =>
    validateManifest(
      patched((m) => (m.services[0]!.requires = ['http'])),
      { source: true },
    ),
  );
});

test('the payload rules of a packed manifest name their key path', (t) => {
  const bad = (payload: object) => ({ ...packed, payload: { ...packed.payload, ...payload } });
  assertRefused(t, () => validateManifest(bad({ size: 8193 })), 'E_MANIFEST_INVALID', 'payload.size', 'size');
  assertRefused(
    t,
    () => validateManifest(bad({ verity: { ...packed.payload.verity, dataBlocks: 3 } })),
    'E_MANIFEST_INVALID',
    'payload.verity.dataBlocks',
    'blocks',
  );
  assertRefused(
    t,
    () => validateManifest(bad({ verity: { ...packed.payload.verity, dataBlockSize: 512 } })),
    'E_MANIFEST_INVALID',
    'payload.verity.dataBlockSize',
    'block size',
  );
  // A packed manifest needs its payload and created; a source manifest may not carry them.
  assertRefused(
    t,
    () => validateManifest({ ...source, format: 2 }),
    'E_MANIFEST_INVALID',
    'created',
    'created',
  );
  assertRefused(
    t,
    () => validateManifest(packed, { source: true }),
    'E_MANIFEST_INVALID',
    'created',
    'source',
  );
});

test('validateManifest() refuses every wrong value at every key path with E_MANIFEST_INVALID', (t) => {
  assertMutationsRefusedCleanly(
    t,
    source,
    (x) => validateManifest(x, { source: true }),
    'E_MANIFEST_INVALID',
  );
  // The format key is checked first, with its own code: leave it out of the packed run.
  const { format: _, ...rest } = packed;
  assertMutationsRefusedCleanly(
    t,
    rest,
    (x) => validateManifest({ format: 2, ...(x as object) }),
    'E_MANIFEST_INVALID',
  );
});

test('messages name the manifest, the key path and the problem', (t) => {
  const e = thrownBy(() => validateManifest({ ...source, kind: 'x' }, { source: true }));
  t.is(e?.code, 'E_MANIFEST_INVALID');
  t.is(
    e?.message,
    'Cannot read layer manifest layer.json: kind: expected one of "app", "library", "module", got "x"',
  );
});

test('layer format 1 (and any format but 2) is refused as such, naming the version: E_LAYER_FORMAT', (t) => {
  const format1 = { ...packed, format: 1, payload: { ...packed.payload, sha256: '0'.repeat(64) } };
  const e = thrownBy(() => validateManifest(format1));
  t.is(e?.code, 'E_LAYER_FORMAT');
  t.regex(e?.message ?? '', /is format 1; this version reads and writes layer format 2 only/);
  t.like(e?.details ?? {}, { field: 'format', format: 1, supported: 2 });
  for (const format of [3, '2', 0, null])
    t.is(thrownBy(() => validateManifest({ ...format1, format }))?.code, 'E_LAYER_FORMAT');
  t.regex(
    thrownBy(() => validateManifest({ ...format1, format: undefined }))?.message ?? '',
    /has no format version/,
  );
  // Format 2 drops payload.sha256: a format 2 manifest carrying it is not valid either.
  t.is(thrownBy(() => validateManifest({ ...format1, format: 2 }))?.details?.field, 'payload.sha256');
  t.is(validateManifest(packed).format, 2);
  // A source manifest may omit the format (pack writes 2) but may not ask for another one.
  t.is(validateManifest(source, { source: true }).format, 2);
  t.is(thrownBy(() => validateManifest({ ...source, format: 1 }, { source: true }))?.code, 'E_LAYER_FORMAT');
});
