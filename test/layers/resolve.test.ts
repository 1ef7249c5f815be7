import test from 'ava';
import { type LayerManifest, manifestJson, resolve, validateManifest } from '../../layers/index.ts';

const payload = {
  filesystem: 'erofs',
  size: 4096,
  verity: {
    rootHash: '1'.repeat(64),
    salt: '',
    dataBlocks: 1,
    hashSize: 8192,
    algorithm: 'sha256',
    dataBlockSize: 4096,
    hashBlockSize: 4096,
  },
};

function layer(name: string, version: string, o: Record<string, unknown> = {}): LayerManifest {
  return validateManifest({
    format: 2,
    name,
    version,
    kind: 'library',
    created: '2024-01-01T00:00:00Z',
    payload,
    ...o,
  });
}
const dep = (name: string, range: string) => ({ name, range });
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'NO ERROR';
};

const app = layer('web', '1.0.0', {
  kind: 'app',
  dependencies: [dep('libssl', '^3.0.0'), dep('libc', '>=2.36')],
  services: [
    { name: 'db', execStart: ['/db'] },
    { name: 'http', execStart: ['/httpd'], after: ['db', 'cache'] },
    { name: 'cache', execStart: ['/cache'], after: ['db'] },
  ],
});

test('closure picks the highest version satisfying every range; overlay and service order', (t) => {
  const installed = [
    app,
    layer('libssl', '3.0.2', { dependencies: [dep('libc', '^2.36.0')], provides: ['libssl.so.3'] }),
    layer('libssl', '3.1.0', { dependencies: [dep('libc', '~2.36.0')], provides: ['libssl.so.3'] }),
    layer('libssl', '4.0.0', { provides: ['libssl.so.4'] }),
    layer('libc', '2.36.4', { provides: ['libc.so.6'] }),
    layer('libc', '2.37.0', { provides: ['libc.so.6'] }),
  ];
  const r = resolve(installed, 'web');
  t.deepEqual(r.closure, ['web', 'libssl', 'libc']);
  t.deepEqual(
    r.layers.map((l) => `${l.name}@${l.version}`),
    ['web@1.0.0', 'libssl@3.1.0', 'libc@2.36.4'], // libssl 3.1 needs ~2.36 → 2.37 is out
  );
  t.deepEqual(r.overlayOrder, ['libc', 'libssl', 'web']);
  t.deepEqual(r.serviceOrder, ['web/db', 'web/cache', 'web/http']);
});

test('missing dependency, conflicting versions, cycle, two providers, service cycle', (t) => {
  t.is(
    code(() => resolve([app], 'web')),
    'E_DEP_MISSING',
  );
  t.is(
    code(() => resolve([], 'web')),
    'E_DEP_MISSING',
  );
  t.is(
    code(() =>
      resolve(
        [app, layer('libssl', '3.0.0', { dependencies: [dep('libc', '<2.30')] }), layer('libc', '2.36.0')],
        'web',
      ),
    ),
    'E_DEP_CONFLICT',
  );
  t.is(
    code(() => resolve([app, layer('libssl', '2.0.0'), layer('libc', '2.36.0')], 'web')),
    'E_DEP_CONFLICT',
  );
  t.is(
    code(() =>
      resolve(
        [
          app,
          layer('libssl', '3.0.0', { dependencies: [dep('libc', '*')] }),
          layer('libc', '2.36.0', { dependencies: [dep('libssl', '*')] }),
        ],
        'web',
      ),
    ),
    'E_DEP_CYCLE',
  );
  t.is(
    code(() =>
      resolve(
        [
          app,
          layer('libssl', '3.0.0', { provides: ['libcrypto.so.3'] }),
          layer('libc', '2.36.0', { provides: ['libcrypto.so.3'] }),
        ],
        'web',
      ),
    ),
    'E_DEP_PROVIDES_CONFLICT',
  );
  const loop = layer('loop', '1.0.0', {
    kind: 'app',
    services: [
      { name: 'a', execStart: ['/a'] },
      { name: 'b', execStart: ['/b'], after: ['a'] },
    ],
  });
  // An ordering cycle: the manifest refuses it (inside a layer), and resolve() on its own.
  const cyclic = {
    ...loop,
    services: loop.services.map((s) => (s.name === 'a' ? { ...s, after: ['b'] } : s)),
  };
  t.is(
    code(() => validateManifest(manifestJson(cyclic))),
    'E_MANIFEST_INVALID',
  );
  t.is(
    code(() => resolve([cyclic], 'loop')),
    'E_SERVICE_CYCLE',
  );
  // What requires or wants names must be in the closure.
  const wants = { ...loop, services: loop.services.map((s) => ({ ...s, wants: ['gone/x'] })) };
  t.is(
    code(() => resolve([wants], 'loop')),
    'E_SERVICE_UNKNOWN',
  );
});

test("a layer group's app names another app's services: resolve() orders its own and leaves the other's to the supervisor; outside a group they must be in the closure", (t) => {
  const member = layer('shop-app', '1.0.0', {
    kind: 'app',
    groups: ['shop'],
    services: [
      { name: 'migrate', execStart: ['/migrate'], after: ['shop-db/db'], requires: ['shop-db/db'] },
      { name: 'app', execStart: ['/app'], after: ['migrate', 'shop-db/db'] },
    ],
  });
  t.deepEqual(resolve([member], 'shop-app').serviceOrder, ['shop-app/migrate', 'shop-app/app']);
  // The same references without the group: the manifest refuses them, and resolve() on its own.
  const alone = { ...member, groups: [] };
  t.is(
    code(() => validateManifest(manifestJson(alone))),
    'E_MANIFEST_INVALID',
  );
  t.is(
    code(() => resolve([alone], 'shop-app')),
    'E_SERVICE_UNKNOWN',
  );
});
