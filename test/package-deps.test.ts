// package.json stays honest: every package the code imports is declared (a transitive copy
// that happens to be in node_modules, like asn1js was, breaks the day its parent drops it),
// and every declared package is used — imported, run as a binary by an npm script, or in the
// short list below with the reason it is there without either.
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
/** Not source: dependencies, generated output, test payloads that are not our code. */
const SKIP = new Set(['node_modules', '.git', '.cache', 'fixtures', 'rootfs', 'out']);

/** Declared but neither imported nor a script's binary, and why. */
const USED_OTHERWISE: Record<string, string> = {
  node: 'the Node 24 runtime npm scripts run on (node_modules/.bin/node), see README',
  '@swc/core': "dependency-cruiser's parser (`parser: 'swc'` in .dependency-cruiser.mjs)",
  '@types/node': 'types of node:* for tsc (tsconfig "types": ["node"])',
  pqclean: "PQClean's ML-DSA C sources, compiled into the stage-1 verifier (bootchain/verifier-build.ts)",
};

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (/\.(ts|mjs|js|cjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** `@scope/name` or `name` of a bare specifier; undefined for node:, relative and absolute ones. */
function packageOf(specifier: string): string | undefined {
  // Node's own modules, and its internals the agent reaches with --expose-internals.
  if (specifier.startsWith('node:') || specifier.startsWith('internal/')) return undefined;
  if (builtinModules.includes(specifier.split('/')[0] ?? '')) return undefined;
  // Only what npm could install: relative paths, template text and prose are not packages.
  if (!/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]*)?$/.test(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const SPECIFIER =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/gm;

async function importedPackages(): Promise<Map<string, string>> {
  const used = new Map<string, string>();
  for (const file of await sourceFiles(ROOT)) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4] ?? '';
      const pkg = packageOf(spec);
      if (pkg !== undefined && !used.has(pkg)) used.set(pkg, relative(ROOT, file));
    }
  }
  return used;
}

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
  bin?: string | Record<string, string>;
}

async function packageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

test('packageOf() keeps the scope of a scoped package and drops node: and relative specifiers', (t) => {
  t.is(packageOf('@peculiar/x509'), '@peculiar/x509');
  t.is(packageOf('ajv/dist/2020.js'), 'ajv');
  t.is(packageOf('@valibot/to-json-schema'), '@valibot/to-json-schema');
  t.is(packageOf('node:fs/promises'), undefined);
  t.is(packageOf('../common/index.ts'), undefined);
  t.is(packageOf('internal/test/binding'), undefined);
  t.is(packageOf(`${'$'}{m}`), undefined);
});

test('every package the code imports is declared in package.json', async (t) => {
  const pkg = await packageJson(ROOT);
  const declared = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.devDependencies ?? {}),
  ]);
  const used = await importedPackages();
  t.true(used.has('execa') && used.has('asn1js'), 'the scan finds imports');
  const undeclared = [...used].filter(([p]) => !declared.has(p)).map(([p, file]) => `${p} (${file})`);
  t.deepEqual(undeclared, [], 'imported but not declared: npm install --save-exact them');
});

test('every declared package is imported, run by an npm script, or listed with its reason', async (t) => {
  const pkg = await packageJson(ROOT);
  const used = await importedPackages();
  const scripts = Object.values(pkg.scripts ?? {}).join(' ');
  const unused: string[] = [];
  for (const name of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]) {
    if (used.has(name) || name in USED_OTHERWISE) continue;
    // @types/x is used when x is.
    if (name.startsWith('@types/') && used.has(name.slice('@types/'.length))) continue;
    const dep = await packageJson(join(ROOT, 'node_modules', name)).catch(() => ({}) as PackageJson);
    const bins = typeof dep.bin === 'string' ? [name.split('/').pop() ?? name] : Object.keys(dep.bin ?? {});
    if (
      bins.some((b) =>
        new RegExp(`(^|[\\s&|;])${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`).test(scripts),
      )
    )
      continue;
    unused.push(name);
  }
  t.deepEqual(unused, [], 'declared but unused: remove them, or say in USED_OTHERWISE why they stay');
  for (const name of Object.keys(USED_OTHERWISE)) {
    t.true(name in (pkg.dependencies ?? {}) || name in (pkg.devDependencies ?? {}), `${name} is declared`);
  }
});

test('dependencies are pinned to exact versions', async (t) => {
  const pkg = await packageJson(ROOT);
  const loose = Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }).filter(
    ([, v]) => !/^\d+\.\d+\.\d+$/.test(v),
  );
  t.deepEqual(loose, []);
});
