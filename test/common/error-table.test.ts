// The code tables: every doc/errors-*.md is what its table generates, every code the source
// throws as a literal is in a table, and the exit code a CLI uses comes from the table.
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { COMMON_CODES, defineCodes, MilkyWayError, RemoteError, ToolError } from '../../common/index.ts';
import { LayerError } from '../../layers/index.ts';
import { CODE_TABLES, renderErrorDocs } from '../../scripts/error-docs.ts';

const ROOT = join(import.meta.dirname, '..', '..');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('every doc/errors-*.md is the one its code table generates (npm run docs:errors)', async (t) => {
  const docs = renderErrorDocs();
  t.true(docs.size === CODE_TABLES.length);
  for (const [path, text] of docs) {
    const committed = await readFile(join(ROOT, path), 'utf8').catch(() => '(missing)');
    t.is(committed, text, `${path} differs from its table: run npm run docs:errors`);
  }
});

test('every code thrown as a literal in the source is in a table of its class', async (t) => {
  const byClass = new Map<string, Set<string>>();
  const all = new Set<string>();
  for (const table of CODE_TABLES) {
    for (const cls of table.errorClasses) {
      const set = byClass.get(cls) ?? new Set<string>();
      for (const c of Object.keys(table.codes)) set.add(c);
      byClass.set(cls, set);
    }
    for (const c of Object.keys(table.codes)) all.add(c);
  }
  const common = new Set(Object.keys(COMMON_CODES.codes));
  // `new XError('E_…'`, a helper call `refuse('E_…'`, or `code: 'E_…'` in an object.
  const call = /\b(\w+)\(\s*'(E_[A-Z0-9_]+)'/g;
  const field = /\bcode:\s*'(E_[A-Z0-9_]+)'/g;
  const missing: string[] = [];
  let seen = 0;
  // Each part's folder is scanned (control/wire, control/broker, … one by one).
  for (const { part } of CODE_TABLES) {
    for (const file of await sources(join(ROOT, part))) {
      // Comments name codes without throwing them.
      const text = (await readFile(file, 'utf8')).replace(/^\s*(\/\/|\*|\/\*\*).*$/gm, '');
      const where = relative(ROOT, file);
      for (const m of text.matchAll(call)) {
        const [, callee = '', code = ''] = m;
        if (callee === 'startsWith' || callee === 'endsWith') continue;
        seen++;
        const own = byClass.get(callee);
        const ok = own === undefined ? all.has(code) : own.has(code) || common.has(code);
        if (!ok) missing.push(`${where}: ${callee}('${code}')`);
      }
      for (const m of text.matchAll(field)) {
        seen++;
        if (!all.has(m[1] ?? '')) missing.push(`${where}: code: '${m[1]}'`);
      }
    }
  }
  t.true(seen > 100, `the scan found ${seen} thrown codes`);
  t.deepEqual(missing, [], 'codes thrown but in no table (add them to the part’s *-codes.ts)');
});

test('every code in a table is raised somewhere, or says it is no longer raised', async (t) => {
  let text = '';
  for (const dir of [
    'common',
    'formats',
    'keys',
    'layers',
    'platform',
    'bootchain',
    'update',
    'agent',
    'imagebuild',
    'control',
  ]) {
    for (const file of await sources(join(ROOT, dir))) {
      if (!file.endsWith('-codes.ts')) text += await readFile(file, 'utf8');
    }
  }
  // The stage-1 verifier is C (bootchain/verifier/): a code it prints on the console, inside a
  // format string or alone in one, counts too.
  let c = '';
  const verifier = join(ROOT, 'bootchain', 'verifier');
  for (const e of await readdir(verifier))
    if (e.endsWith('.c') || e.endsWith('.h')) c += await readFile(join(verifier, e), 'utf8');
  // `E_JOB_${state}`: codes built from a prefix count as raised.
  const prefixes = [...text.matchAll(/`(E_[A-Z0-9_]*_)\$\{/g)].map((m) => m[1] ?? '');
  const idle: string[] = [];
  for (const table of CODE_TABLES) {
    for (const [code, spec] of Object.entries(table.codes)) {
      if (spec.meaning.startsWith('no longer raised')) continue;
      if (new RegExp(`['"\`]${code}['"\`]`).test(text)) continue;
      if (new RegExp(`"[^"\n]*\\b${code}\\b[^"\n]*"`).test(c)) continue;
      if (prefixes.some((p) => code.startsWith(p))) continue;
      idle.push(`${table.part}: ${code}`);
    }
  }
  t.deepEqual(
    idle,
    [],
    'listed but raised nowhere: remove it, or say "no longer raised" so it is never reused',
  );
});

test('a code listed again by a part keeps common/’s exit code', (t) => {
  for (const table of CODE_TABLES) {
    if (table === COMMON_CODES) continue;
    for (const [code, spec] of Object.entries(table.codes)) {
      const base = COMMON_CODES.codes[code as keyof typeof COMMON_CODES.codes];
      if (base !== undefined) t.is(spec.exit ?? 1, base.exit ?? 1, `${table.part}: ${code}`);
    }
  }
});

test('defineCodes() refuses a code listed twice and a name that is not E_…', (t) => {
  const doc = { part: 'x', source: 'x.ts', errorClasses: ['X'], title: 'x', intro: 'x' };
  t.throws(() => defineCodes(doc, { A: { E_ONE: 'one' }, B: { E_ONE: 'again' } }), {
    message: /E_ONE is listed twice/,
  });
  t.throws(() => defineCodes(doc, { A: { E_lower: 'bad' } }), { message: /not an E_ code/ });
});

test('the exit code is the code’s, from its part’s table (common/ codes in every part)', (t) => {
  t.is(new LayerError('E_USAGE', 'x').exitCode, 2);
  t.is(new LayerError('E_EPOCH_INVALID', 'x').exitCode, 2);
  t.is(new LayerError('E_LAYER_READ', 'x').exitCode, 1);
  t.is(new LayerError('E_INTERNAL', 'x').exitCode, 70);
  t.is(new ToolError('E_TOOL_MISSING', 'x').exitCode, 1);
  // Another process's code: only common/'s are known here.
  t.is(new RemoteError('E_USAGE', 'x').exitCode, 2);
  t.is(new RemoteError('E_JOB_UNKNOWN', 'x').exitCode, 1);
  t.true(new LayerError('E_LAYER_READ', 'x') instanceof MilkyWayError);
  // @ts-expect-error E_TYPO is in no table: the class's code is the table's union
  t.is(new LayerError('E_TYPO', 'x').exitCode, 1);
});
