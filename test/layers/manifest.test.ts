import test from 'ava';
import { LayerError, validateManifest } from '../../layers/index.ts';

const source = {
  name: 'web',
  version: '1.2.3',
  kind: 'app',
  dependencies: [{ name: 'libssl', range: '^3.0.0' }],
  services: [
    { name: 'db', argv: ['/bin/db'] },
    {
      name: 'http',
      argv: ['/bin/httpd', '-p', '8080'],
      readiness: { type: 'tcp', port: 8080 },
      after: ['db'],
    },
  ],
};

test('a source manifest gets every default filled', (t) => {
  const m = validateManifest(source, { source: true });
  const http = m.services[1];
  t.is(http?.restart.policy, 'on-failure');
  t.deepEqual(http?.readiness, { type: 'tcp', port: 8080, host: '127.0.0.1' });
  t.is(http?.user, 'nobody');
  t.is(http?.group, 'nogroup');
  t.is(m.architecture, 'x86_64');
  t.deepEqual(m.data, { private: true, groups: [], common: false });
});

function fieldOf(json: unknown, source = true): string | undefined {
  const e = t0(() => validateManifest(json, { source }));
  return (e?.details?.field as string | undefined) ?? e?.code;
}
function t0(f: () => unknown): LayerError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof LayerError) return e;
    throw e;
  }
  return undefined;
}

test('errors name the offending field path', (t) => {
  const bad = (patch: (m: Record<string, unknown>) => void) => {
    const m = structuredClone(source) as Record<string, unknown>;
    patch(m);
    return fieldOf(m);
  };
  t.is(
    bad((m) => (m.version = '1.2')),
    'version',
  );
  t.is(
    bad((m) => (m.kind = 'daemon')),
    'kind',
  );
  t.is(
    bad((m) => (m.name = '../x')),
    'name',
  );
  t.is(
    bad((m) => (m.extra = 1)),
    'extra',
  );
  t.is(
    bad((m) => ((m.services as Record<string, unknown>[])[1]!.restart = { policy: 'sometimes' })),
    'services[1].restart.policy',
  );
  t.is(
    bad((m) => ((m.services as Record<string, unknown>[])[1]!.readiness = { type: 'tcp', port: 70000 })),
    'services[1].readiness.port',
  );
  t.is(
    bad((m) => ((m.services as Record<string, unknown>[])[1]!.after = ['nope'])),
    'services[1].after[0]',
  );
  t.is(
    bad((m) => ((m.services as Record<string, unknown>[])[0]!.name = 'http')),
    'services[1]',
  );
  t.is(
    bad((m) => ((m.dependencies as Record<string, unknown>[])[0]!.range = '>>1')),
    'dependencies[0].range',
  );
  t.is(
    bad((m) => ((m.services as Record<string, unknown>[])[0]!.argv = [])),
    'services[0].argv',
  );
  // A packed manifest needs its format, payload and created.
  t.is(fieldOf(source, false), 'format');
  t.is(fieldOf({ ...source, format: 2 }, false), 'created');
  const e = t0(() => validateManifest({ ...source, kind: 'x' }, { source: true }));
  t.is(e?.code, 'E_MANIFEST_INVALID');
  t.regex(e?.message ?? '', /kind must be one of app, library, module/);
});

test('layer format 1 (and any format but 2) is refused as such, naming the version: E_LAYER_FORMAT', (t) => {
  const packed = {
    ...source,
    format: 1,
    created: '2024-01-01T00:00:00.000Z',
    payload: {
      filesystem: 'erofs',
      size: 4096,
      sha256: '0'.repeat(64),
      verity: {
        rootHash: '1'.repeat(64),
        salt: '',
        dataBlocks: 1,
        hashSize: 4096,
        algorithm: 'sha256',
        dataBlockSize: 4096,
        hashBlockSize: 4096,
      },
    },
  };
  const e = t0(() => validateManifest(packed));
  t.is(e?.code, 'E_LAYER_FORMAT');
  t.regex(e?.message ?? '', /is format 1; this version reads and writes layer format 2 only/);
  t.like(e?.details ?? {}, { field: 'format', format: 1, supported: 2 });
  for (const format of [3, '2', 0, null])
    t.is(t0(() => validateManifest({ ...packed, format }))?.code, 'E_LAYER_FORMAT');
  t.regex(
    t0(() => validateManifest({ ...packed, format: undefined }))?.message ?? '',
    /has no format version/,
  );
  // Format 2 drops payload.sha256: a format 2 manifest carrying it is not valid either.
  t.is(fieldOf({ ...packed, format: 2 }, false), 'payload.sha256');
  const { sha256: _dropped, ...payload2 } = packed.payload;
  t.is(validateManifest({ ...packed, format: 2, payload: payload2 }).format, 2);
  // A source manifest may omit the format (pack writes 2) but may not ask for another one.
  t.is(validateManifest(source, { source: true }).format, 2);
  t.is(t0(() => validateManifest({ ...source, format: 1 }, { source: true }))?.code, 'E_LAYER_FORMAT');
});
