// Every error code in doc/errors-*.md can happen to a user of a documented command: each code of
// a table is raised in a non-test source file that one of the five binaries loads (their import
// closure, static imports and the lazy verbs' `import()`, as dependency-cruiser resolves it), and
// every code the source raises is in a table. Raise sites are found in the syntax tree (swc, the
// parser dependency-cruiser uses here), so a code named in a comment or only compared against
// (`e.code === 'E_…'`, `case 'E_…':`) does not count as raised.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSync } from '@swc/core';
import test from 'ava';
import { execa } from 'execa';
import { CODE_TABLES } from '../../scripts/error-docs.ts';
import { jsonOut, ROOT } from '../helpers.ts';

const ENTRIES = [
  'control/operator/bin/mway.ts',
  'control/broker/bin/milkywaysrvd.ts',
  'layers/bin/mway-layer.ts',
  'imagebuild/bin/mway-image.ts',
  'agent/bin/milkyway-agent.ts',
];
const PARTS = [
  'common',
  'formats',
  'platform',
  'keys',
  'layers',
  'bootchain',
  'update',
  'control',
  'agent',
  'imagebuild',
];
const CODE = /^E_[A-Z0-9_]+$/;
/** Method calls that look a code up rather than raise it. */
const LOOKUPS = new Set(['includes', 'has', 'startsWith', 'endsWith', 'indexOf', 'get', 'delete']);
/** Nodes a value passes through unchanged on its way to where it is used. */
const TRANSPARENT = new Set([
  'ParenthesisExpression',
  'TsAsExpression',
  'TsConstAssertion',
  'TsSatisfiesExpression',
  'TsNonNullExpression',
  'ConditionalExpression',
  'BinaryExpression', // `a ?? 'E_…'`, `x || 'E_…'`; comparisons are caught below
]);

interface Site {
  file: string;
  code: string;
  /** raise: an argument of a call or `new`, or a `code:` field; mapped: returned, a table's value; check: compared. */
  kind: 'raise' | 'mapped' | 'check';
  /** `E_JOB_${state}`: every code with this prefix. */
  prefix?: boolean;
}

type Node = Record<string, unknown> & { type?: string };

function kindOf(chain: Node[]): Site['kind'] {
  // chain: the literal first, then its ancestors (argument wrappers without a type included).
  let i = 1;
  for (; i < chain.length; i++) {
    const n = chain[i] as Node;
    if (n.type === 'BinaryExpression' && ['===', '!==', '==', '!='].includes(String(n.operator)))
      return 'check';
    if (n.type !== undefined && !TRANSPARENT.has(n.type)) break;
  }
  const parent = chain[i];
  const inner = chain[i - 1];
  if (parent === undefined) return 'mapped';
  if (parent.type === 'SwitchCase') return 'check';
  if ((parent.type === 'CallExpression' || parent.type === 'NewExpression') && parent.callee !== inner) {
    let callee = parent.callee as Node;
    if (callee.type === 'OptionalChainingExpression') callee = callee.base as Node;
    const method = callee.type === 'MemberExpression' ? ((callee.property as Node).value as string) : '';
    return LOOKUPS.has(method) ? 'check' : 'raise';
  }
  if (parent.type === 'KeyValueProperty') {
    const key = parent.key as Node;
    return key.value === 'code' ? 'raise' : 'mapped';
  }
  return 'mapped';
}

function sitesOf(file: string, text: string): Site[] {
  const out: Site[] = [];
  const walk = (n: unknown, chain: Node[]): void => {
    if (Array.isArray(n)) {
      for (const x of n) walk(x, chain);
      return;
    }
    if (n === null || typeof n !== 'object') return;
    const node = n as Node;
    const here = [node, ...chain];
    if (node.type === 'StringLiteral' && CODE.test(String(node.value))) {
      out.push({ file, code: String(node.value), kind: kindOf(here) });
    } else if (node.type === 'TemplateLiteral') {
      const head = ((node.quasis as Node[])[0]?.cooked as string | undefined) ?? '';
      const whole = (node.quasis as Node[]).length === 1;
      if (whole && CODE.test(head)) out.push({ file, code: head, kind: kindOf(here) });
      else if (/^E_[A-Z0-9_]*_$/.test(head)) out.push({ file, code: head, kind: kindOf(here), prefix: true });
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'span' && typeof v === 'object') walk(v, here);
  };
  walk(parseSync(text, { syntax: 'typescript', target: 'es2024' }), []);
  return out;
}

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true }).catch(() => [])) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!['test', 'node_modules', 'fixtures', 'rootfs'].includes(e.name)) out.push(...(await sources(p)));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('-codes.ts')) out.push(p);
  }
  return out;
}

/** The modules the five binaries load, as dependency-cruiser resolves their imports. */
async function closure(): Promise<Set<string>> {
  const r = await execa(
    join(ROOT, 'node_modules/.bin/depcruise'),
    ['--config', '.dependency-cruiser.mjs', '--output-type', 'json', ...ENTRIES],
    { cwd: ROOT, timeout: 120_000, maxBuffer: 256 * 1024 * 1024 },
  );
  const j = JSON.parse(String(r.stdout)) as { modules: { source: string }[] };
  return new Set(j.modules.map((m) => m.source));
}

const [loaded, sites] = await Promise.all([
  closure(),
  (async () => {
    const all: Site[] = [];
    for (const part of PARTS)
      for (const f of await sources(part)) all.push(...sitesOf(f, await readFile(join(ROOT, f), 'utf8')));
    return all;
  })(),
]);
const documented = new Map<string, string>();
for (const t of CODE_TABLES)
  for (const [code, spec] of Object.entries(t.codes))
    if (!documented.has(code)) documented.set(code, spec.meaning);

/** The stage-1 verifier is C (bootchain/verifier/), built into every image by bootchain/verifier-build.ts. */
async function verifierCodes(): Promise<Set<string>> {
  const dir = join(ROOT, 'bootchain', 'verifier');
  const out = new Set<string>();
  for (const e of await readdir(dir)) {
    if (!e.endsWith('.c') && !e.endsWith('.h')) continue;
    const c = (await readFile(join(dir, e), 'utf8')).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const s of c.matchAll(/"((?:[^"\\\n]|\\.)*)"/g))
      for (const m of (s[1] ?? '').matchAll(/\bE_[A-Z0-9_]+\b/g)) out.add(m[0]);
  }
  return out;
}

test('the scan sees the binaries load the parts and finds the raise sites it should', (t) => {
  // Cross-checks of the scan itself: the lazy verbs are followed, and known raises are found.
  for (const m of ['control/operator/cli/status.ts', 'imagebuild/cli/build.ts', 'agent/core/agent-log.ts'])
    t.true(loaded.has(m), `${m} is loaded by a binary`);
  t.true(loaded.has('bootchain/verifier-build.ts'), 'mway-image build compiles the stage-1 verifier');
  const at = (file: string, code: string) => sites.filter((s) => s.file === file && s.code === code);
  t.deepEqual(at('keys/algorithms.ts', 'E_ALG_UNKNOWN')[0]?.kind, 'raise', 'new KeysError(code, …)');
  t.deepEqual(at('layers/layer-file.ts', 'E_LAYER_READ')[0]?.kind, 'mapped', '{ readCode: code }');
  t.deepEqual(at('control/broker/cli/audit.ts', 'E_AUDIT')[0]?.kind, 'check', 'code?.startsWith(…)');
  t.true(sites.length > 500, `${sites.length} sites`);
});

test('every code in doc/errors-*.md is raised in a module one of the five binaries loads', async (t) => {
  const c = await verifierCodes();
  const unreached: string[] = [];
  const retired: string[] = [];
  for (const [code, meaning] of documented) {
    const raised = sites.filter(
      (s) => s.kind !== 'check' && (s.prefix === true ? code.startsWith(s.code) : s.code === code),
    );
    if (meaning.startsWith('no longer raised')) {
      // Listed only so the code is never reused: then nothing may raise it.
      if (raised.some((s) => !s.prefix)) retired.push(`${code}: ${raised.map((s) => s.file).join(', ')}`);
      continue;
    }
    if (c.has(code)) continue;
    if (raised.some((s) => loaded.has(s.file))) continue;
    unreached.push(
      `${code}: ${raised.length === 0 ? 'raised nowhere' : `raised only in ${[...new Set(raised.map((s) => s.file))].join(', ')}`}`,
    );
  }
  t.deepEqual(unreached, [], 'documented codes no binary can print: delete them or raise them');
  t.deepEqual(retired, [], 'codes the docs call "no longer raised" that the source raises');
});

test('every code the source raises is documented', (t) => {
  const undocumented = sites
    .filter((s) => s.kind !== 'check' && !s.prefix && !documented.has(s.code))
    .map((s) => `${s.file}: ${s.code}`);
  t.deepEqual(
    [...new Set(undocumented)],
    [],
    'add them to their part’s *-codes.ts and run npm run docs:errors',
  );
  const prefixes = sites.filter((s) => s.prefix);
  for (const p of prefixes)
    t.true(
      [...documented.keys()].some((c) => c.startsWith(p.code)),
      `${p.file}: \`${p.code}\${…}\` matches a documented code`,
    );
});

test('every code doc/errors-*.md names, in a table or its prose, is a code of a table', async (t) => {
  const stray: string[] = [];
  for (const f of (await readdir(join(ROOT, 'doc'))).filter((n) => /^errors-.*\.md$/.test(n)))
    for (const m of (await readFile(join(ROOT, 'doc', f), 'utf8')).matchAll(/\bE_[A-Z0-9_]*[A-Z0-9]\b/g))
      if (!documented.has(m[0])) stray.push(`${f}: ${m[0]}`);
  t.deepEqual([...new Set(stray)], []);
});

test('codes the binaries print for bad input are ones the scan found raised in what they load', async (t) => {
  // The dynamic side, as a check on the static one: real runs, as a user types them, of every
  // binary on missing, empty and wrong files; each printed code must have a raise site the scan
  // saw in the binaries' import closure (else the scan misses a way codes are raised).
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { cli } = await import('../helpers.ts');
  const dir = await mkdtemp(join(tmpdir(), 'mway-reach-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const empty = join(dir, 'empty.json');
  const junk = join(dir, 'junk.bin');
  await writeFile(empty, '{}');
  await writeFile(junk, 'not a layer, a disk or a certificate\n');
  const runs: [keyof typeof import('../helpers.ts').BINS, string[]][] = [
    ['mway', ['install', '--group', 'web', join(dir, 'none.mwl')]],
    ['mway', ['keys', 'show', junk]],
    ['mway', ['status', '--frobnicate']],
    ['mway-layer', ['verify', '--trust', junk, junk]],
    ['mway-layer', ['inspect', junk]],
    ['mway-image', ['spec', 'validate', join(dir, 'none.json')]],
    ['mway-image', ['spec', 'validate', empty]],
    ['mway-image', ['gpt', 'show', junk]],
    ['milkywaysrvd', ['check-config', '--config', empty]],
    ['milkywaysrvd', ['audit', '--config', join(dir, 'none.json')]],
    ['milkyway-agent', ['ctl', 'status', '--bus', `unix:path=${join(dir, 'bus')}`]],
  ];
  const printed = await Promise.all(
    runs.map(async ([bin, args]) => {
      const r = await cli(bin, [...args, '--json'], { timeout: 60_000 });
      const body = jsonOut(r.stdout) as { error?: { code?: string } };
      return { what: [bin, ...args].join(' '), code: String(body.error?.code) };
    }),
  );
  for (const { what, code } of printed) {
    t.not(code, 'E_INTERNAL', what);
    t.true(documented.has(code), `${what}: ${code} is documented`);
    t.true(
      sites.some((s) => s.code === code && s.kind !== 'check' && loaded.has(s.file)),
      `${what}: ${code} has a raise site the scan found`,
    );
  }
  t.true(new Set(printed.map((p) => p.code)).size >= 6, printed.map((p) => p.code).join(' '));
});
