// policy.cil is checked at pack time: its statements (layers/policy-module.ts: rules about its
// own types only), then secilc (Debian secilc 3.4) compiles it into the whole policy a device
// would load (layers/selinux/ + the layer's generated types + one other layer). A module that
// passes is packed and bound; one that does not — unknown symbol, syntax error, a neverallow
// breach, another layer's or a platform attribute's name, a statement kind a layer may not
// use — is refused with E_POLICY_INVALID naming the file and line, and nothing is written.

import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { packLayer, platformAttributeLine, verifyLayer } from '../../layers/index.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { layerSource, pki } from './fixture.ts';

/** The fixture layer is `hello`: its domain is mway_hello_t; a type of its own and a listener. */
const GOOD = `; hello: a cache folder type of its own and a TCP listener
(type cache_t)
(allow mway_hello_t cache_t (dir (search getattr read open add_name write)))
(allow mway_hello_t self (tcp_socket (create bind listen accept read write name_bind)))
(typetransition mway_hello_t mway_hello_data_t dir "cache" cache_t)
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

test('a module about its own types compiles against the base, is packed, bound and verifies', async (t) => {
  const { p, out, run } = await packWith(t, GOOD);
  const r = await run;
  t.is(r.manifest.policy?.size, Buffer.byteLength(GOOD));
  const v = await verifyLayer(out, { anchors: [p.userRoot.cert] });
  t.truthy(v.manifest.policy);
  t.is(Buffer.from(v.policy ?? []).toString(), GOOD);
});

for (const [what, policy, line, says] of [
  ['an unknown type', '(type x_t)\n(allow mway_hello_t nosuch_t (file (read)))\n', 2, /resolve allow/],
  [
    'an unbalanced parenthesis',
    '(type hello_t)\n(allow mway_hello_t self (file (read))\n',
    2,
    /parenthesis/i,
  ],
  [
    'a neverallow breach (its domain writing CoreOS files)',
    '; a comment\n(type sneaky_t)\n\n(allow mway_hello_t milkyway_coreos_file_t (file (write)))\n',
    4,
    /neverallow/,
  ],
  ['a capability the base forbids', '(allow mway_hello_t self (capability (sys_module)))\n', 1, /neverallow/],
  [
    "every layer's private data (through the attribute)",
    '(allow mway_hello_t milkyway_layer_data_type (file (read open)))\n',
    1,
    /neverallow/,
  ],
  ["the agent's process", '(allow mway_hello_t milkyway_agent_t (process (ptrace)))\n', 1, /neverallow/],
  [
    "the local API's control methods",
    '(allow mway_hello_t milkyway_agent_t (milkyway_agent_api (control)))\n',
    1,
    /neverallow/,
  ],
  [
    'joining the platform attribute',
    '(type sneaky_t)\n; joins the platform, which no neverallow binds\n(typeattributeset .milkyway_platform_type (sneaky_t))\n',
    3,
    /milkyway_platform_type/,
  ],
  [
    "another layer's type",
    '(allow mway_hello_t mway_web_data_t (file (read)))\n',
    1,
    /mway_web_data_t: names another layer/,
  ],
  [
    "a group's type",
    '(allow mway_hello_t mwgroup_ops_t (file (read)))\n',
    1,
    /names another layer's or a group's/,
  ],
  ['another namespace', '(allow mway_hello_t mway_web.cache_t (file (read)))\n', 1, /another namespace/],
  [
    'a rule about platform types only',
    '(allow milkyway_agent_t milkyway_certs_t (file (write)))\n',
    1,
    /own types as source or target/,
  ],
  ['a permissive domain', '(typepermissive mway_hello_t)\n', 1, /typepermissive: not allowed/],
  [
    'a macro call',
    '(call milkyway_group_member (mway_hello_t milkyway_common_data_t))\n',
    1,
    /call: not allowed/,
  ],
  ['a second user', '(user evil_u)\n', 1, /user: not allowed/],
  [
    'a file label',
    '(filecon "/x" file (system_u object_r mway_hello_file_t ((s0) (s0))))\n',
    1,
    /filecon: not allowed/,
  ],
] as const) {
  test(`pack refuses policy.cil with ${what}: E_POLICY_INVALID, file and line, no output`, async (t) => {
    const { dir, src, run } = await packWith(t, policy);
    const e = await t.throwsAsync(run);
    t.is((e as { code?: string }).code, 'E_POLICY_INVALID', e?.message);
    t.true(e?.message.startsWith(join(src, 'policy.cil')), e?.message);
    t.regex(e?.message ?? '', says);
    t.true(e?.message.includes(`policy.cil:${line}`), e?.message);
    t.is((e as { details?: { line?: number } }).details?.line, line);
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
  const j = jsonOut(r.stdout) as { ok: boolean; error: { code: string; message: string } };
  t.is(j.error.code, 'E_POLICY_CHECKER_MISSING');
  t.regex(j.error.message, /apt-get install secilc/);
  t.false((await readdir(dir)).includes('l.mwl'));
});

test('doc/how-to-package-a-layer.md: its module packs as written; adding the rule it describes is refused as shown', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { ROOT } = await import('../helpers.ts');
  const page = await readFile(join(ROOT, 'doc', 'how-to-package-a-layer.md'), 'utf8');
  const section = page.slice(page.indexOf('### An SELinux policy module'));
  const module = /```lisp\n([\s\S]*?)```/.exec(section)?.[1];
  const shown = /```\n(mway-layer: E_POLICY_INVALID: [^\n]*)\n```/.exec(section)?.[1];
  if (module === undefined || shown === undefined) return t.fail('the page has no module or no error');
  const ok = await packWith(t, module);
  t.truthy((await ok.run).manifest.policy);
  // The page's error quotes the rule it refuses: the same module with it as line 4.
  const rule = /\| (\(allow [^|]*\))$/.exec(shown)?.[1];
  if (rule === undefined) return t.fail('the error names no rule');
  const bad = await packWith(t, `${module}${rule}\n`);
  const e = await t.throwsAsync(bad.run);
  const [prefix] = shown.replace(/^mway-layer: E_POLICY_INVALID: /, '').split(' | ');
  // The page ran pack on `hello`; here the source folder has another path before policy.cil.
  t.true(e?.message.includes(`/${(prefix ?? '?').replace(/^hello\//, '')}`), e?.message);
  t.true(e?.message.endsWith(rule), e?.message);
  t.deepEqual(await readdir(bad.dir).then((f) => f.includes('l.mwl')), false);
});
