// The agent's side of SELinux that a host with SELinux off can check: the names and contexts
// derived from a layer (layers/selinux-names.ts) never meet another layer's, bwrap gets the
// exec and file labels only when selinuxfs says SELinux runs, unitSpec() hands every service
// its layer's context, the contexts are valid in the compiled policy (secilc accepts them in a
// portcon), the mode is read from selinuxfs, and a service's info names its domain and pair
// (the denial count: test/agent/core/avc-denials.test.ts).
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { selinuxEnabled, selinuxMode, splitContext } from '../../../agent/core/selinux-state.ts';
import { kernelView, selinuxText } from '../../../agent/cli/selinux-text.ts';
import { ServiceLog } from '../../../agent/services/service-log.ts';
import { ServiceUnit } from '../../../agent/services/service-unit.ts';
import { unitSpec } from '../../../agent/services/placement.ts';
import { rootContextOption } from '../../../agent/services/sandbox-runner.ts';
import type { UnitSpec } from '../../../agent/services/unit-spec.ts';
import { bwrapArgs, setprivArgs } from '../../../agent/services/sandbox.ts';
import {
  cilStem,
  compileSources,
  layerObjectContext,
  layerProcessContext,
  layerTypes,
  mcsLevel,
  policySources,
  validateManifest,
} from '../../../layers/index.ts';
import { tempDir } from '../../helpers.ts';
import { FakeRunner } from '../services/_fake-runner.ts';
import { spec } from '../services/_service-fixture.ts';

test('layerTypes() keeps plain names, escapes _ and . injectively, never meets another layer', (t) => {
  t.deepEqual(layerTypes('web'), {
    domain: 'mway_web_t',
    files: 'mway_web_file_t',
    data: 'mway_web_data_t',
    secret: 'mway_web_secret_t',
    root: 'mway_web_root_t',
    block: 'mway_web',
  });
  t.is(layerTypes('my-app').domain, 'mway_my-app_t');
  t.is(layerTypes('a.b').domain, 'mway_a_db_t');
  t.is(layerTypes('a_b').domain, 'mway_a__b_t');
  // Names a lossy mapping would merge, and names that end like another's suffix.
  const names = [
    'a-b',
    'a_b',
    'a.b',
    'ab',
    'a_db',
    'a',
    'a_file',
    'a.file',
    'a__file',
    'x_data',
    'x_root',
    'x.root',
    'x',
    'x_',
    'x__',
  ];
  const all = names.flatMap((n) => Object.values(layerTypes(n)));
  t.is(new Set(all).size, all.length);
  t.throws(() => cilStem('A'), { instanceOf: TypeError });
  t.throws(() => cilStem('../x'), { instanceOf: TypeError });
});

test('contexts: system_u:system_r:<domain>:s0:cA,cB for processes, object_r for files', (t) => {
  t.is(layerProcessContext('web', [3, 17]), 'system_u:system_r:mway_web_t:s0:c3,c17');
  t.is(layerProcessContext('web'), 'system_u:system_r:mway_web_t:s0');
  t.is(layerObjectContext('web', 'data', [0, 1]), 'system_u:object_r:mway_web_data_t:s0:c0,c1');
  t.is(layerObjectContext('web', 'files'), 'system_u:object_r:mway_web_file_t:s0');
  for (const bad of [
    [1, 1],
    [2, 1],
    [-1, 0],
    [0, 1024],
    [0.5, 2],
  ] as const)
    t.throws(() => mcsLevel(bad), { instanceOf: RangeError }, String(bad));
});

test('selinuxMode() reads the enforce file of the selinuxfs it is given', async (t) => {
  const fs = await tempDir(t, 'mway-selinuxfs-');
  t.is(selinuxMode(fs), 'off');
  t.is(selinuxMode(join(fs, 'missing')), 'off');
  await writeFile(join(fs, 'enforce'), '0');
  t.is(selinuxMode(fs), 'permissive');
  t.true(selinuxEnabled(fs));
  await writeFile(join(fs, 'enforce'), '1');
  t.is(selinuxMode(fs), 'enforcing');
});

test('bwrapArgs() passes --exec-label and --file-label only when SELinux is enabled', (t) => {
  const s = spec('web/httpd', 'true', {
    selinuxLabel: layerProcessContext('web', [0, 1]),
    selinuxFileLabel: 'system_u:object_r:milkyway_sandbox_tmp_t:s0:c0,c1',
  });
  const value = (args: string[], opt: string) => {
    const i = args.indexOf(opt);
    return i < 0 ? undefined : args[i + 1];
  };
  t.is(value(bwrapArgs(s, { selinux: false }), '--exec-label'), undefined);
  t.is(value(bwrapArgs(s, { selinux: false }), '--file-label'), undefined);
  const args = bwrapArgs(s, { selinux: true });
  t.is(value(args, '--exec-label'), 'system_u:system_r:mway_web_t:s0:c0,c1');
  t.is(value(args, '--file-label'), 'system_u:object_r:milkyway_sandbox_tmp_t:s0:c0,c1');
  // bwrap options: before the `--` that ends them, so they label the service's exec and tmpfs.
  t.true(args.indexOf('--exec-label') < args.indexOf('--'));
  // No label in the spec (services not from a layer manifest): nothing to pass.
  t.is(value(bwrapArgs(spec('x/y', 'true'), { selinux: true }), '--exec-label'), undefined);
  // An exec probe enters the domain through setpriv.
  const p = setprivArgs(61184, 61184, [], 'system_u:system_r:mway_web_t:s0:c0,c1');
  t.is(value(p, '--selinux-label'), 'system_u:system_r:mway_web_t:s0:c0,c1');
  t.true(p.indexOf('--selinux-label') < p.indexOf('--'));
  t.false(setprivArgs(0, 0, []).includes('--selinux-label'));
});

test("unitSpec() gives every service of a layer that layer's contexts", (t) => {
  const source = validateManifest(
    {
      name: 'my-app',
      version: '1.0.0',
      kind: 'app',
      services: [
        { name: 'a', execStart: ['/bin/a'], user: 'nobody' },
        { name: 'b', execStart: ['/bin/b'], user: 'root', after: ['a'] },
      ],
    },
    { source: true },
  );
  const selinux = {
    process: layerProcessContext('my-app', [0, 5]),
    files: 'system_u:object_r:milkyway_sandbox_tmp_t:s0:c0,c5',
    root: layerObjectContext('my-app', 'root', [0, 5]),
  };
  const at = { root: '/r', binds: [], uid: 61184, gid: 61184, defaultStopSec: 10, groupGids: {} };
  const specs = source.services.map((s) => unitSpec(source.name, s, { ...at, selinux }));
  t.deepEqual(
    specs.map((s) => [s.name, s.selinuxLabel, s.selinuxFileLabel, s.selinuxRootLabel]),
    [
      ['my-app/a', selinux.process, selinux.files, 'system_u:object_r:mway_my-app_root_t:s0:c0,c5'],
      ['my-app/b', selinux.process, selinux.files, 'system_u:object_r:mway_my-app_root_t:s0:c0,c5'],
    ],
  );
  // A writable root's mounts carry that context only when SELinux is on.
  const [a] = specs;
  t.is(rootContextOption(a as UnitSpec, true), ',context="system_u:object_r:mway_my-app_root_t:s0:c0,c5"');
  t.is(rootContextOption(a as UnitSpec, false), '');
  // With SELinux off the layer manager passes no contexts, and the specs carry none.
  const off = source.services.map((s) => unitSpec(source.name, s, at));
  t.true(off.every((s) => s.selinuxLabel === undefined && s.selinuxFileLabel === undefined));
  t.true(off.every((s) => rootContextOption(s, true) === ''));
});

test("a service's info names its layer's domain and pair (status), taken apart at the level's own colons", (t) => {
  const label = layerProcessContext('my-app', [3, 17]);
  const u = new ServiceUnit(spec('my-app/a', 'true', { selinuxLabel: label }), {
    runner: new FakeRunner(),
    readiness: () => [],
    log: new ServiceLog('my-app/a', { ringLines: 10, fileBytes: 1024, files: 1, rateLinesPerSecond: 10 }),
    changed: () => {},
  });
  t.deepEqual(u.info().selinux, { context: label, domain: 'mway_my-app_t', level: 's0:c3,c17' });
  t.deepEqual(splitContext('system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023'), {
    user: 'system_u',
    role: 'system_r',
    type: 'milkyway_agent_t',
    level: 's0-s0:c0.c1023',
  });
  t.throws(() => splitContext('unconfined'), { instanceOf: TypeError });
  // With SELinux off there is no label, and no `selinux` in the info.
  const off = new ServiceUnit(spec('my-app/a', 'true'), {
    runner: new FakeRunner(),
    readiness: () => [],
    log: new ServiceLog('my-app/a', { ringLines: 10, fileBytes: 1024, files: 1, rateLinesPerSecond: 10 }),
    changed: () => {},
  });
  t.false('selinux' in off.info());
});

test('the derived contexts are valid in the compiled policy (secilc checks a portcon of each)', async (t) => {
  const layers = ['web', 'my-app', 'x_y', 'a.b.c'];
  const sources = await policySources(
    layers.map((name) => ({ name })),
    [],
  );
  const ctx = (c: string) => {
    const [user, role, type, ...level] = c.split(':');
    const [s, cats] = level;
    const lv = cats === undefined ? `(${s})` : `(${s} (${(cats ?? '').split(',').join(' ')}))`;
    return `(${user} ${role} ${type} (${lv} ${lv}))`;
  };
  let port = 65000;
  const extra = layers
    .flatMap((l, i) => [layerProcessContext(l, [i, i + 1]), layerObjectContext(l, 'data', [i, i + 1])])
    .map((c) => `(portcon tcp ${port++} ${ctx(c)})`)
    .join('\n');
  const good = new Map(sources).set('contexts.cil', `${extra}\n`);
  const compiled = await compileSources(good);
  for (const l of layers) t.true(compiled.policy.includes(Buffer.from(layerTypes(l).domain)), l);
  // The cross-check can fail: a context naming a layer that is not in the policy does not compile.
  const bad = new Map(sources).set(
    'contexts.cil',
    `(portcon tcp 1 ${ctx(layerProcessContext('other', [0, 1]))})\n`,
  );
  await t.throwsAsync(compileSources(bad), { code: 'E_POLICY_INVALID' });
});

test('ctl prints the mode, the policy and the denials on one line, and whether the kernel agrees with a label', (t) => {
  const sha256 = 'cd'.repeat(32);
  const agent = 'system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023';
  t.is(
    selinuxText({
      mode: 'enforcing',
      policy: { version: 2, format: 33, sha256, layers: 3 },
      denials: 1,
      context: agent,
    }),
    `enforcing; policy 2 (format 33, 3 layers) sha256 ${sha256}; 1 denials since boot; agent in ${agent}`,
  );
  t.is(
    selinuxText({ mode: 'permissive', denials: 12, unseen: 3 }),
    'permissive; 12 denials since boot (3 audit records unseen)',
  );
  t.is(selinuxText({ mode: 'off', denials: 0 }), 'off');
  const label = layerProcessContext('web', [0, 1]);
  const s = { context: label, domain: 'mway_web_t', level: 's0:c0,c1' };
  t.is(kernelView(s), undefined, 'not running: nothing to compare');
  t.is(kernelView({ ...s, running: [label] }), 'agrees');
  // A process outside its label (a failed --exec-label, another layer's domain) is named.
  t.is(kernelView({ ...s, running: [label, agent] }), `${label},${agent}`);
  t.is(kernelView({ ...s, running: [] }), 'none');
});
