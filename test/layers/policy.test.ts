// policy.cil is compiled at pack time with secilc (Debian secilc 3.4) against
// layers/selinux-base.cil: a module that compiles is packed and bound; one that does not —
// unknown symbol, syntax error, a neverallow breach, naming the platform attribute — is
// refused with E_POLICY_INVALID naming the file and line, and nothing is written.
import test from 'ava';
import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packLayer, platformAttributeLine, POLICY_BASE, verifyLayer } from '../../layers/index.ts';
import { cli, tempDir } from '../helpers.ts';
import { layerSource, pki } from './fixture.ts';

/** A service domain and its executable's file type, as doc/layer-format.md shows. */
const GOOD = `; hello: one service domain, its entry point, a TCP listener
(type hello_t)
(roletype system_r hello_t)
(typeattributeset milkyway_service_domain (hello_t))
(type hello_exec_t)
(typeattributeset milkyway_layer_file_type (hello_exec_t))
(allow hello_t hello_exec_t (file (read open getattr execute map entrypoint)))
(allow hello_t self (tcp_socket (create bind listen accept read write name_bind)))
`;

async function packWith(t: import('ava').ExecutionContext, policy: string) {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'), { policy: true });
  await writeFile(join(src, 'policy.cil'), policy);
  const out = join(dir, 'l.mwl');
  const run = packLayer({ dir: src, key: p.user.key, chain: p.user.chain, out, sourceDateEpoch: 1 });
  return { p, dir, src, out, run };
}

test('the base policy compiles on its own with secilc (an MLS policy)', async (t) => {
  const dir = await tempDir(t);
  const r = await execa(
    'secilc',
    ['--mls=true', '-o', join(dir, 'policy.bin'), '-f', join(dir, 'fc'), POLICY_BASE],
    {
      reject: false,
    },
  );
  t.is(r.exitCode, 0, r.stderr);
  t.true((await readFile(join(dir, 'policy.bin'))).length > 1000);
});

test('a module that compiles against the base is packed, bound and verifies', async (t) => {
  const { p, out, run } = await packWith(t, GOOD);
  const r = await run;
  t.is(r.manifest.policy?.size, Buffer.byteLength(GOOD));
  const v = await verifyLayer(out, { anchors: [p.userRoot.cert] });
  t.truthy(v.manifest.policy);
});

for (const [what, policy, line, says] of [
  ['an unknown type', '(type hello_t)\n(allow hello_t nosuch_t (file (read)))\n', 2, /resolve allow/],
  [
    'an unbalanced parenthesis',
    '(type hello_t)\n(allow hello_t self (file (read))\n',
    undefined,
    /parenthesis/i,
  ],
  [
    'a neverallow breach (a module type writing CoreOS files)',
    '(type sneaky_t)\n(roletype system_r sneaky_t)\n\n(allow sneaky_t milkyway_coreos_file_t (file (write)))\n',
    4,
    /neverallow/,
  ],
  [
    'a capability the base forbids',
    '(type sneaky_t)\n(allow sneaky_t self (capability (sys_module)))\n',
    2,
    /neverallow/,
  ],
  [
    'joining the platform attribute',
    '(type sneaky_t)\n; joins the platform, which no neverallow binds\n(typeattributeset .milkyway_platform_type (sneaky_t))\n',
    3,
    /milkyway_platform_type/,
  ],
] as const) {
  test(`pack refuses policy.cil with ${what}: E_POLICY_INVALID, file and line, no output`, async (t) => {
    const { dir, src, run } = await packWith(t, policy);
    const e = await t.throwsAsync(run);
    t.is((e as { code?: string }).code, 'E_POLICY_INVALID', e?.message);
    t.true(e?.message.startsWith(join(src, 'policy.cil')), e?.message);
    t.regex(e?.message ?? '', says);
    if (line !== undefined) {
      t.true(e?.message.includes(`policy.cil:${line}`), e?.message);
      t.is((e as { details?: { line?: number } }).details?.line, line);
    }
    t.deepEqual((await readdir(dir)).sort(), ['src']);
  });
}

test('platformAttributeLine ignores comments and strings, finds namespaced names', (t) => {
  t.is(platformAttributeLine('; milkyway_platform_type\n(type a)'), undefined);
  t.is(platformAttributeLine('(type a)\n(typeattributeset b "milkyway_platform_type")'), undefined);
  t.is(platformAttributeLine('(type a)\n(typeattributeset milkyway_platform_type_x (a))'), undefined);
  t.is(platformAttributeLine('(type a)\n\n(typeattributeset .milkyway_platform_type (a))'), 3);
  t.is(platformAttributeLine('(typeattributeset milkyway_platform_type(a))'), 1);
});

test('mway-layer pack without secilc on PATH: E_POLICY_CHECKER_MISSING naming the Debian package', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'), { policy: true });
  const out = join(dir, 'l.mwl');
  const r = await cli(
    'mway-layer',
    ['pack', src, '--key', p.user.keyPath, '--cert', p.user.certPath, '-o', out, '--json'],
    { env: { PATH: join(dir, 'no-such-dir') } },
  );
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
  t.is(j.error.code, 'E_POLICY_CHECKER_MISSING');
  t.regex(j.error.message, /apt-get install secilc/);
  t.false((await readdir(dir)).includes('l.mwl'));
});
