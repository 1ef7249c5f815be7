// The SELinux exec label (agent/services/sandbox.ts): derived from the layer name, passed to bwrap as
// --exec-label only when selinuxfs says SELinux is enabled, and a context secilc accepts
// when a module declares the domain the way doc/agent.md says (cross-check with secilc).
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import type { Manifest } from '../../../agent/layers/layers-contract.ts';
import { servicesOf } from '../../../agent/layers/manifest-services.ts';
import { bwrapArgs, selinuxEnabled, selinuxLabelOf, selinuxTypeOf } from '../../../agent/services/sandbox.ts';
import { POLICY_BASE, validateManifest } from '../../../layers/index.ts';
import { tempDir } from '../../helpers.ts';
import { spec } from '../services/_service-fixture.ts';

test('selinuxLabelOf() is system_u:system_r:mway_<layer>_t:s0, the name kept whole', (t) => {
  t.is(selinuxLabelOf('web'), 'system_u:system_r:mway_web_t:s0');
  t.is(selinuxLabelOf('my-app'), 'system_u:system_r:mway_my-app_t:s0');
  t.is(selinuxLabelOf('a.b'), 'system_u:system_r:mway_a.b_t:s0');
  // Names that a lossy mapping (. and - to _) would merge stay apart.
  const names = ['a-b', 'a_b', 'a.b', 'ab'];
  t.is(new Set(names.map(selinuxTypeOf)).size, names.length);
});

test('selinuxEnabled() reads the enforce file of the selinuxfs it is given', async (t) => {
  const fs = await tempDir(t, 'mway-selinuxfs-');
  t.false(selinuxEnabled(fs));
  t.false(selinuxEnabled(join(fs, 'missing')));
  // Permissive mode has the file too (it reads 0): the label is applied either way.
  await writeFile(join(fs, 'enforce'), '0');
  t.true(selinuxEnabled(fs));
});

test('bwrapArgs() passes --exec-label only when SELinux is enabled', async (t) => {
  const fs = await tempDir(t, 'mway-selinuxfs-');
  const s = spec('web/httpd', 'true', { selinuxLabel: selinuxLabelOf('web') });
  const label = (args: string[]) => {
    const i = args.indexOf('--exec-label');
    return i < 0 ? undefined : args[i + 1];
  };
  t.is(label(bwrapArgs(s, { selinux: selinuxEnabled(fs) })), undefined);
  await writeFile(join(fs, 'enforce'), '1');
  const args = bwrapArgs(s, { selinux: selinuxEnabled(fs) });
  t.is(label(args), 'system_u:system_r:mway_web_t:s0');
  // A bwrap option: before the `--` that ends them, so it labels the service's exec.
  t.true(args.indexOf('--exec-label') < args.indexOf('--'));
  // No label in the spec (services not from a layer manifest): nothing to pass.
  t.is(label(bwrapArgs(spec('x/y', 'true'), { selinux: true })), undefined);
});

test("servicesOf() gives every service of a layer that layer's exec label", (t) => {
  const source = validateManifest(
    {
      name: 'my-app',
      version: '1.0.0',
      kind: 'app',
      services: [
        { name: 'a', argv: ['/bin/a'], user: 'nobody' },
        { name: 'b', argv: ['/bin/b'], user: 'root', after: ['a'] },
      ],
    },
    { source: true },
  );
  const m = { ...source, created: '2026-01-01T00:00:00Z', policy: undefined } as unknown as Manifest;
  const specs = servicesOf(m, { root: '/r', binds: [], uid: 61184, gid: 61184 });
  t.deepEqual(
    specs.map((s) => [s.name, s.selinuxLabel]),
    [
      ['my-app/a', 'system_u:system_r:mway_my-app_t:s0'],
      ['my-app/b', 'system_u:system_r:mway_my-app_t:s0'],
    ],
  );
});

/** A module declaring the layer's domain as doc/agent.md says, and a context using `label`. */
function moduleFor(layer: string, label: string): string {
  // mway_a.b_t: the dots are CIL namespaces, so the type sits in nested blocks.
  const parts = selinuxTypeOf(layer).split('.');
  const type = parts.pop() as string;
  const decl = `(type ${type}) (roletype system_r ${type}) (typeattributeset milkyway_service_domain (${type}))`;
  const nested = parts.reduceRight((inner, block) => `(block ${block} ${inner})`, decl);
  const [user, role, domain, level] = label.split(':');
  return `${nested}\n(portcon tcp 65000 (${user} ${role} ${domain} ((${level}) (${level}))))\n`;
}

test('the derived label is a valid context for secilc once the layer declares its domain', async (t) => {
  const dir = await tempDir(t, 'mway-selinux-cil-');
  const compile = async (name: string, text: string) => {
    const file = join(dir, `${name}.cil`);
    await writeFile(file, text);
    const out = join(dir, `${name}.policy`);
    const r = await run('secilc', ['--mls=true', '-o', out, '-f', '/dev/null', POLICY_BASE, file], {
      timeout: 60_000,
      reject: false,
    });
    return { ...r, out };
  };
  for (const layer of ['web', 'my-app', 'x_y', 'a.b.c']) {
    const r = await compile(layer.replaceAll('.', '_'), moduleFor(layer, selinuxLabelOf(layer)));
    t.is(r.exitCode, 0, `${layer}: ${r.stderr}`);
    const policy = await readFile(r.out);
    t.true(policy.includes(Buffer.from(selinuxTypeOf(layer))), `${layer}: type in the binary policy`);
  }
  // The cross-check can fail: a context naming another layer's (undeclared) domain does not compile.
  const wrong = await compile('wrong', moduleFor('web', selinuxLabelOf('other')));
  t.not(wrong.exitCode, 0);
});
