// The operator's side of module arguments (control/operator/fleet-modules.ts): `--arg NAME=VALUE`
// typed by the action's schema (numbers, booleans, repeated for a list, JSON for objects),
// `--args-file` under them, the whole object checked against the schema before anything is
// signed — each refusal E_MODULE_ARGS naming the argument — and finding modules, verbs and actions.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import {
  type ActionInfo,
  actionArgs,
  argsHelp,
  type FleetModule,
  findAction,
  findModule,
  fleetModules,
} from '../../../control/operator/fleet-modules.ts';
import type { PeerView } from '../../../control/operator/operator-client.ts';
import { signStatus } from '../../../control/wire/index.ts';
import { newIdentity } from '../../../keys/index.ts';
import { validateManifest } from '../../../layers/index.ts';
import { tempDir } from '../../helpers.ts';
import { codeOfAsync, type Id, makeFleetPki } from '../command-fixture.ts';

const m = validateManifest(
  {
    name: 'vpn',
    version: '1.0.0',
    kind: 'module',
    verb: { name: 'vpn' },
    actions: [
      {
        name: 'add-peers',
        argv: ['/bin/add'],
        args: {
          type: 'object',
          additionalProperties: false,
          required: ['group'],
          properties: {
            group: { type: 'string', description: 'The peer group' },
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            keepalive: { type: 'number' },
            all: { type: 'boolean' },
            nets: { type: 'array', items: { type: 'string' } },
            ports: { type: 'array', items: { type: 'integer' } },
            route: { type: 'object', properties: { via: { type: 'string' } } },
          },
        },
      },
    ],
  },
  { source: true },
);
const mod: FleetModule = {
  name: 'vpn',
  version: '1.0.0',
  manifest: 'a'.repeat(64),
  verb: { name: 'vpn', description: '' },
  actions: m.actions as ActionInfo[],
  peers: ['p1'],
};
const action = mod.actions[0] as ActionInfo;

test('actionArgs() types each --arg by the schema and checks the whole object', async (t) => {
  t.deepEqual(
    await actionArgs(
      mod,
      action,
      [
        'group=virt_net',
        'port=51820',
        'keepalive=2.5',
        'all=true',
        'nets=10.0.0.0/8',
        'nets=172.16.42.0/24',
        'ports=1',
        'ports=2',
        'route={"via":"hub"}',
      ],
      undefined,
    ),
    {
      group: 'virt_net',
      port: 51820,
      keepalive: 2.5,
      all: true,
      nets: ['10.0.0.0/8', '172.16.42.0/24'],
      ports: [1, 2],
      route: { via: 'hub' },
    },
  );
  // A value with '=' in it keeps everything after the first one.
  t.deepEqual(await actionArgs(mod, action, ['group=a=b'], undefined), { group: 'a=b' });
});

test('actionArgs() reads --args-file first and lets --arg add to it', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'args.json');
  await writeFile(file, JSON.stringify({ group: 'from-file', nets: ['10.0.0.0/8'], port: 1 }));
  t.deepEqual(await actionArgs(mod, action, ['port=2', 'nets=192.168.0.0/16'], file), {
    group: 'from-file',
    nets: ['10.0.0.0/8', '192.168.0.0/16'],
    port: 2,
  });
  const notObject = join(dir, 'list.json');
  await writeFile(notObject, '[1]');
  t.is(await codeOfAsync(() => actionArgs(mod, action, [], notObject)), 'E_MODULE_ARGS');
  t.is(await codeOfAsync(() => actionArgs(mod, action, [], join(dir, 'missing.json'))), 'E_MODULE_ARGS');
  const garbled = join(dir, 'bad.json');
  await writeFile(garbled, '{');
  t.is(await codeOfAsync(() => actionArgs(mod, action, [], garbled)), 'E_MODULE_ARGS');
});

test('actionArgs() refuses what the schema does not allow, naming the argument', async (t) => {
  const cases: [string[], string][] = [
    [[], 'group'],
    [['group=g', 'port=0'], 'port'],
    [['group=g', 'port=x'], 'port'],
    [['group=g', 'port=1.5'], 'port'],
    [['group=g', 'all=yes'], 'all'],
    [['group=g', 'other=1'], 'other'],
    [['group=g', 'route=nope'], 'route'],
    [['group'], ''],
  ];
  for (const [pairs, field] of cases) {
    const e = await t.throwsAsync(actionArgs(mod, action, pairs, undefined));
    t.is((e as { code?: string }).code, 'E_MODULE_ARGS', pairs.join(' '));
    if (field !== '')
      t.is(
        (e as { details?: { field?: string } }).details?.field,
        field,
        `${pairs.join(' ')} names ${field}`,
      );
  }
});

test('findModule() and findAction() name what there is when nothing matches', (t) => {
  t.is(findModule([mod], 'vpn', 'verb')[0], mod);
  t.is(findModule([mod], 'vpn', 'name')[0], mod);
  const e1 = t.throws(() => findModule([mod], 'virt', 'verb')) as unknown as {
    code: string;
    message: string;
  };
  t.is(e1.code, 'E_VERB_UNKNOWN');
  t.regex(e1.message, /known: vpn/);
  const e2 = t.throws(() => findModule([mod], 'virt', 'name')) as unknown as { code: string };
  t.is(e2.code, 'E_MODULE_UNKNOWN');
  const e3 = t.throws(() => findAction(mod, 'remove')) as unknown as { code: string; message: string };
  t.is(e3.code, 'E_MODULE_ACTION_UNKNOWN');
  t.regex(e3.message, /it has: add-peers/);
  t.deepEqual(argsHelp(action).slice(0, 2), [
    '  --arg group=string (required)  The peer group',
    '  --arg port=integer  ≥ 1, ≤ 65535',
  ]);
});

test('fleetModules() takes modules only from statuses that verify, and skips entries of a shape no manifest has', async (t) => {
  const p = await makeFleetPki();
  const summary = { manifest: mod.manifest, verb: mod.verb, actions: mod.actions };
  const status = (peer: Id, layers: unknown[]) =>
    signStatus(
      {
        v: 1,
        peer: peer.cert.peerId as string,
        fleet: 'prod',
        at: new Date().toISOString(),
        agent: {},
        layers,
        services: [],
        groups: [],
      },
      peer.key,
      peer.chain,
    );
  const view = (peerId: string, s: unknown): PeerView => ({
    peerId,
    name: peerId,
    online: true,
    lastSeen: null,
    groups: [],
    labels: {},
    certificate: '',
    status: s,
  });
  const layer = (module: unknown, extra: Record<string, unknown> = {}) => ({
    name: 'vpn',
    version: '1.0.0',
    state: 'active',
    kind: 'module',
    module,
    ...extra,
  });
  const hostile = [
    { ...summary, manifest: 'not hex' },
    { ...summary, verb: { name: 'Not A Verb' } },
    { ...summary, actions: [{ name: 'x' }] },
    { ...summary, actions: [{ ...action, args: { type: 'object', properties: 'none' } }] },
    { ...summary, actions: 'all' },
    'a string',
  ];
  const peers = [
    view(
      'p1',
      status(p.p1, [layer(summary), layer(summary, { state: 'refused' }), layer(summary, { kind: 'app' })]),
    ),
    // p2's status claims to be p1's: not counted.
    view('p2', status(p.p1, [layer(summary)])),
    view(
      'p2',
      status(
        p.p2,
        hostile.map((h) => layer(h)),
      ),
    ),
  ];
  const found = fleetModules({ anchors: [p.root.cert], crls: [] }, peers);
  t.is(found.length, 1);
  t.deepEqual(found[0]?.peers, ['p1']);
  t.deepEqual(
    found[0]?.actions.map((a) => a.name),
    ['add-peers'],
  );
  // Against another root the same statuses do not verify: nothing from them.
  const other = await newIdentity({ role: 'user-root', name: 'other', outDir: await tempDir(t) });
  t.deepEqual(fleetModules({ anchors: [other.certificate], crls: [] }, peers), []);
});
