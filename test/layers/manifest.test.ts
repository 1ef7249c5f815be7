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
  // A packed manifest needs payload and created.
  t.is(fieldOf(source, false), 'created');
  const e = t0(() => validateManifest({ ...source, kind: 'x' }, { source: true }));
  t.is(e?.code, 'E_MANIFEST_INVALID');
  t.regex(e?.message ?? '', /kind must be one of app, library, module/);
});
