// The layering of doc/ARCHITECTURE.md ("Parts and their boundaries") as a test: a static scan
// of every import specifier in the parts' sources. A file may import another part only through
// that part's index.ts and only downward; each part's index.ts only re-exports. Tests and
// benchmarks (test/, bench/) are not parts and are not scanned: they may import any file, to
// test internals. Import cycles are checked by dependency-cruiser (`npm run deps`,
// .dependency-cruiser.mjs), which parses the files with swc; this scanner is independent of it.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ROOT } from './helpers.ts';

/** Bottom to top; a part imports only parts of a lower rank (siblings of one rank never). */
const PARTS: ReadonlyArray<readonly [part: string, rank: number]> = [
  ['common', 0],
  ['formats', 1],
  // The disk layout: below the agent (which mounts it) and the builder (which writes it).
  ['platform', 2],
  ['keys', 2],
  ['layers', 3],
  ['bootchain', 4],
  // A/B updates: above the boot chain (whose slot rules stage 1 runs), below the agent and the builder.
  ['update', 4.5],
  ['control/wire', 5],
  ['agent', 6],
  ['imagebuild', 7],
  ['control/broker', 8],
  ['control/operator', 8],
];

/** Stated on their own beside the ranks, so each refusal names the rule it breaks. */
const FORBIDDEN: ReadonlyArray<{ from: string; allowed?: readonly string[]; never?: readonly string[] }> = [
  { from: 'formats', allowed: ['common'] },
  { from: 'platform', allowed: ['common', 'formats'] },
  { from: 'keys', allowed: ['common', 'formats'] },
  { from: 'control/broker', never: ['agent'] },
  { from: 'control/operator', never: ['agent'] },
];

/**
 * Violations that belong to another helper's work in flight, each naming the branch that
 * removes it. An entry that no longer matches anything fails the test: delete it then.
 */
const ALLOWED: ReadonlyArray<{ from: string; to: string; branch: string; why: string }> = [];

const SKIP_DIRS = new Set(['node_modules', 'fixtures', 'rootfs', 'out']);

function partOf(path: string): string | undefined {
  let best: string | undefined;
  for (const [p] of PARTS)
    if ((path === p || path.startsWith(`${p}/`)) && p.length > (best?.length ?? 0)) best = p;
  return best;
}

function rankOf(part: string): number {
  const r = PARTS.find(([p]) => p === part)?.[1];
  if (r === undefined) throw new RangeError(`Unknown part ${part}`);
  return r;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  } catch {
    return out; // a part not created yet (formats/ before its branch lands)
  }
  for (const e of entries) {
    const rel = posix.join(dir, e.name);
    if (e.isDirectory()) {
      // control/ holds three parts; a nested part is scanned as its own.
      if (!SKIP_DIRS.has(e.name) && partOf(rel) === partOf(dir)) out.push(...sources(rel));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/**
 * Source without its comment lines (`//`, and block comments' lines starting with `/*` or
 * `*`), so a commented-out import or a JSDoc `import('…')` type is not an import. Line-based
 * on purpose: a character scanner would have to tell regex literals from division to know
 * where strings are; no import here follows code on its line.
 */
function stripComments(src: string): string {
  return src
    .split('\n')
    .map((l) => (/^\s*(\/\/|\/\*|\*)/.test(l) ? '' : l))
    .join('\n');
}

/** Every literal import specifier: static imports and re-exports, side-effect imports, import(). */
function specifiers(src: string): string[] {
  const code = stripComments(src);
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[;\n}])\s*(?:import|export)\s[^;'"`]*?\sfrom\s*(['"])([^'"\n]+)\1/g))
    out.push(m[2] as string);
  for (const m of code.matchAll(/(?:^|[;\n])\s*import\s*(['"])([^'"\n]+)\1/g)) out.push(m[2] as string);
  for (const m of code.matchAll(/\bimport\(\s*(['"])([^'"\n]+)\1\s*\)/g)) out.push(m[2] as string);
  return out;
}

interface Edge {
  from: string;
  to: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  const seen = new Set<string>();
  for (const [part] of PARTS) {
    for (const file of sources(part)) {
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
        if (spec.startsWith('.'))
          out.push({ from: file, to: posix.normalize(posix.join(posix.dirname(file), spec)) });
      }
    }
  }
  return out;
}

/** What is wrong with one import, or undefined. */
function violation({ from, to }: Edge): string | undefined {
  const pf = partOf(from) as string;
  const pt = partOf(to);
  if (pt === undefined)
    return `${from} imports ${to}, which is in no part (tests, benches and scripts are not imported)`;
  if (pt === pf) return undefined;
  for (const r of FORBIDDEN) {
    if (r.from !== pf) continue;
    if (r.allowed !== undefined && !r.allowed.includes(pt))
      return `${from} imports ${pt}/: ${pf}/ may import only ${r.allowed.join(', ')}`;
    if (r.never?.includes(pt)) return `${from} imports ${pt}/: ${pf}/ never imports ${pt}/`;
  }
  if (rankOf(pt) >= rankOf(pf)) return `${from} imports ${pt}/, which is not below ${pf}/ in the layering`;
  // A CLI may mount another part's CLI under its own (mway keys → keys/cli/index.ts).
  if (to === `${pt}/cli/index.ts` && from.startsWith(`${pf}/cli/`)) return undefined;
  if (to !== `${pt}/index.ts`)
    return `${from} imports ${to}: other parts are imported through ${pt}/index.ts`;
  return undefined;
}

function isAllowed(e: Edge): boolean {
  return ALLOWED.some((a) => a.from === e.from && a.to === e.to);
}

test('every import between parts goes through index.ts and points down the layering', (t) => {
  const all = edges();
  t.true(all.length > 500, `the scanner found only ${all.length} relative imports`);
  const bad = all.flatMap((e) => {
    const v = violation(e);
    return v === undefined || isAllowed(e) ? [] : [v];
  });
  t.deepEqual(bad, []);
});

test('every allowlisted violation still exists (remove the entry once its branch has landed)', (t) => {
  const all = edges();
  const stale = ALLOWED.filter((a) => !all.some((e) => e.from === a.from && e.to === a.to && violation(e)));
  t.deepEqual(
    stale.map((a) => `${a.from} → ${a.to} (branch ${a.branch})`),
    [],
  );
});

test("each part's index.ts only re-exports", (t) => {
  for (const [part] of PARTS) {
    let src: string;
    try {
      src = readFileSync(join(ROOT, part, 'index.ts'), 'utf8');
    } catch {
      continue; // bootchain/ has no code yet; formats/ before its branch lands
    }
    const rest = stripComments(src)
      .replace(/export\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s+from\s+'[^']+';/g, '')
      .trim();
    t.is(rest, '', `${part}/index.ts has more than re-exports`);
  }
});

test('the boundary scanner refuses what the rules forbid', (t) => {
  const cases: Array<[Edge, string | undefined]> = [
    [{ from: 'keys/chain.ts', to: 'common/index.ts' }, undefined],
    [{ from: 'keys/chain.ts', to: 'common/error.ts' }, 'other parts are imported through common/index.ts'],
    [{ from: 'keys/chain.ts', to: 'layers/index.ts' }, 'keys/ may import only common, formats'],
    [{ from: 'formats/gpt/header.ts', to: 'keys/index.ts' }, 'formats/ may import only common'],
    [{ from: 'control/broker/broker.ts', to: 'agent/index.ts' }, 'control/broker/ never imports agent/'],
    [{ from: 'control/operator/targets.ts', to: 'agent/index.ts' }, 'control/operator/ never imports agent/'],
    [{ from: 'control/wire/protocol.ts', to: 'agent/index.ts' }, 'not below control/wire/'],
    [{ from: 'control/broker/broker.ts', to: 'control/operator/index.ts' }, 'not below control/broker/'],
    [{ from: 'agent/remote/peer-link.ts', to: 'control/wire/index.ts' }, undefined],
    [{ from: 'agent/remote/peer-link.ts', to: 'control/wire/transport.ts' }, 'through control/wire/index.ts'],
    [{ from: 'control/operator/cli/index.ts', to: 'keys/cli/index.ts' }, undefined],
    [{ from: 'control/operator/operator-client.ts', to: 'keys/cli/index.ts' }, 'through keys/index.ts'],
    [{ from: 'agent/core/agent.ts', to: 'test/helpers.ts' }, 'in no part'],
    [{ from: 'agent/core/agent.ts', to: 'agent/layers/layer-manager.ts' }, undefined],
  ];
  for (const [e, want] of cases) {
    const got = violation(e);
    if (want === undefined) t.is(got, undefined, `${e.from} → ${e.to}`);
    else t.true(got?.includes(want) === true, `${e.from} → ${e.to}: ${String(got)}`);
  }
  t.deepEqual(
    specifiers(
      "import a from './a.ts';\nimport type { B } from \"../b.ts\";\n// import { c } from './c.ts';\n" +
        "export * from './d.ts';\nimport './e.ts';\nconst f = await import('./f.ts');\n" +
        "import {\n  g,\n  type H,\n} from './g.ts';\n/* import x from './x.ts'; */\nconst url = 'http://h/i';",
    ),
    ['./a.ts', '../b.ts', './d.ts', './g.ts', './e.ts', './f.ts'],
  );
});
