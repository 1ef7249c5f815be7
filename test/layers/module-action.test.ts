// Module manifests (layers/module-action.ts): actions with argument schemas, privileges,
// output bound and timeout, and a verb; the cross-field rules with their key paths; the
// published doc/layer-source.schema.json accepts what validateManifest accepts (Ajv); and
// moduleValueSchema agrees with Ajv — a JSON Schema validator nobody here wrote — on a table of
// values against the same argument schema.
import { Ajv2020 } from 'ajv/dist/2020.js';
import test from 'ava';
import { schema } from '../../common/index.ts';
import { moduleValueSchema, validateManifest, type ValueSchema } from '../../layers/index.ts';
import { assertRefused, publishedValidator } from '../schema-fixture.ts';

const vpnArgs: ValueSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['range'],
  properties: {
    range: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$', maxLength: 18 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    keepalive: { type: 'number', minimum: 0 },
    mode: { type: 'string', enum: ['hub', 'spoke'] },
    peers: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 3 },
    routes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['to'],
        properties: { to: { type: 'string' }, metric: { type: 'integer' } },
      },
    },
    quiet: { type: 'boolean' },
  },
};

const module = {
  name: 'vpn',
  version: '1.0.0',
  kind: 'module',
  data: { private: true, groups: ['vpn'] },
  verb: { name: 'vpn', description: 'WireGuard tunnels' },
  actions: [
    {
      name: 'init',
      argv: ['/bin/vpn-init'],
      args: vpnArgs,
      privileges: {
        user: 'root',
        network: 'admin',
        devices: ['/dev/net/tun'],
        data: { private: true, groups: ['vpn'] },
      },
      output: { maxBytes: 4096, schema: { type: 'object', properties: { publicKey: { type: 'string' } } } },
      timeoutSec: 60,
    },
    { name: 'status', argv: ['/bin/vpn-status'] },
  ],
};

test('validateManifest() reads a module: actions with defaults filled, the verb kept', (t) => {
  const m = validateManifest(module, { source: true });
  t.is(m.verb?.name, 'vpn');
  const [init, status] = m.actions;
  t.deepEqual(init?.privileges, {
    user: 'root',
    capabilities: [],
    network: 'admin',
    devices: ['/dev/net/tun'],
    data: { private: true, groups: ['vpn'], common: false },
  });
  t.is(init?.timeoutSec, 60);
  t.deepEqual(init?.args, vpnArgs, 'the argument schema is kept as written (no defaults added)');
  // Nothing declared: nothing granted, no arguments, the default bounds.
  t.deepEqual(status?.privileges, {
    user: 'nobody',
    capabilities: [],
    network: 'none',
    devices: [],
    data: { private: false, groups: [], common: false },
  });
  t.deepEqual(status?.args, { type: 'object', properties: {}, additionalProperties: false });
  t.deepEqual(status?.output, { maxBytes: 64 * 1024 });
  t.is(status?.timeoutSec, 30);
  t.true(publishedValidator('layer-source')(module), 'doc/layer-source.schema.json accepts it too');
});

const { verb: _verb, ...withoutVerb } = module;

const action0 = (patch: Record<string, unknown>) => ({
  ...module,
  actions: [{ ...module.actions[0], ...patch }],
});

const refusals: [string, unknown, string][] = [
  ['actions on an app', { ...withoutVerb, kind: 'app' }, 'actions'],
  ['a verb on an app', { ...module, kind: 'app', actions: [] }, 'verb'],
  ['a verb with a capital', { ...module, verb: { name: 'Vpn' } }, 'verb.name'],
  [
    'CAP_NET_ADMIN as a capability',
    action0({ privileges: { capabilities: ['CAP_NET_ADMIN'] } }),
    'actions[0].privileges.capabilities[0]',
  ],
  [
    'data the layer does not declare',
    action0({ privileges: { data: { common: true } } }),
    'actions[0].privileges.data.common',
  ],
  [
    'a group the layer does not use',
    action0({ privileges: { data: { groups: ['web'] } } }),
    'actions[0].privileges.data.groups[0]',
  ],
  [
    'a device outside /dev',
    action0({ privileges: { devices: ['/etc/shadow'] } }),
    'actions[0].privileges.devices[0]',
  ],
  ['an unknown network mode', action0({ privileges: { network: 'all' } }), 'actions[0].privileges.network'],
  ['arguments that are not an object', action0({ args: { type: 'string' } }), 'actions[0].args.type'],
  [
    'a pattern that does not compile',
    action0({ args: { type: 'object', properties: { a: { type: 'string', pattern: '(' } } } }),
    'actions[0].args.properties.a.pattern',
  ],
  [
    'required naming no property',
    action0({ args: { type: 'object', properties: {}, required: ['x'] } }),
    'actions[0].args.required[0]',
  ],
  [
    'an unknown JSON Schema keyword',
    action0({ args: { type: 'object', properties: { a: { type: 'string', format: 'ipv4' } } } }),
    'actions[0].args.properties.a.format',
  ],
  [
    'an empty range',
    action0({ args: { type: 'object', properties: { a: { type: 'integer', minimum: 5, maximum: 1 } } } }),
    'actions[0].args.properties.a.maximum',
  ],
  [
    'nesting deeper than the bound',
    action0({
      args: {
        type: 'object',
        properties: {
          a: { type: 'array', items: { type: 'array', items: { type: 'array', items: { type: 'string' } } } },
        },
      },
    }),
    // depth 3 at the top: a (2) → items (1) → items (0) may only be a scalar
    'actions[0].args.properties.a.items.items.type',
  ],
  ['an output bound over 256 KiB', action0({ output: { maxBytes: 300_000 } }), 'actions[0].output.maxBytes'],
  ['a timeout of 0', action0({ timeoutSec: 0 }), 'actions[0].timeoutSec'],
  ['two actions of one name', { ...module, actions: [module.actions[1], module.actions[1]] }, 'actions[1]'],
];

for (const [what, value, keyPath] of refusals) {
  test(`validateManifest() refuses ${what} naming ${keyPath}`, (t) => {
    assertRefused(t, () => validateManifest(value, { source: true }), 'E_MANIFEST_INVALID', keyPath, what);
  });
}

test('moduleValueSchema() accepts and refuses exactly what Ajv does for the same schema', (t) => {
  const ours = moduleValueSchema(vpnArgs);
  const ajv = new Ajv2020({ strict: true }).compile(vpnArgs);
  const values: unknown[] = [
    { range: '10.10.0.0/24' },
    { range: '10.10.0.0/24', port: 51820, keepalive: 2.5, mode: 'hub', quiet: true },
    { range: '10.10.0.0/24', peers: ['a', 'b', 'c'] },
    { range: '10.10.0.0/24', routes: [{ to: '172.16.0.0/12', metric: 3, extra: 'kept' }] },
    {},
    { range: 'not a range' },
    { range: '10.10.0.0/24', port: 0 },
    { range: '10.10.0.0/24', port: 1.5 },
    { range: '10.10.0.0/24', port: '51820' },
    { range: '10.10.0.0/24', keepalive: -1 },
    { range: '10.10.0.0/24', mode: 'mesh' },
    { range: '10.10.0.0/24', peers: ['a', 'b', 'c', 'd'] },
    { range: '10.10.0.0/24', peers: [''] },
    { range: '10.10.0.0/24', routes: [{ metric: 1 }] },
    { range: '10.10.0.0/24', quiet: 'yes' },
    { range: '10.10.0.0/24', other: 1 },
    { range: '100.100.100.100/24' },
    [],
    null,
    'x',
    // Astral characters count once each (JSON Schema counts code points).
    { range: '10.10.0.0/24', peers: ['😀'] },
  ];
  for (const value of values) {
    const r = schema.check(ours, value);
    t.is(r.ok, ajv(value) === true, `${JSON.stringify(value)}: ours ${r.ok}, Ajv ${String(ajv(value))}`);
  }
  const bad = schema.check(ours, { range: '10.10.0.0/24', routes: [{ to: 7 }] });
  t.false(bad.ok);
  if (!bad.ok) t.is(bad.issue.keyPath, 'routes[0].to', 'the key path names the argument');
});

test('a string maxLength counts code points as JSON Schema does', (t) => {
  const s: ValueSchema = { type: 'string', maxLength: 2 };
  const ajv = new Ajv2020({ strict: true }).compile(s);
  for (const value of ['😀😀', '😀😀😀', 'ab', 'abc']) {
    t.is(schema.check(moduleValueSchema(s), value).ok, ajv(value) === true, value);
  }
});
