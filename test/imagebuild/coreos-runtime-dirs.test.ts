// CoreOS ships the repository's parts the agent needs (imagebuild/coreos-tree.ts RUNTIME_DIRS):
// every part any agent/ source imports, directly or through the parts it imports, must be in
// the list — a part missing there boots an agent that dies on its first import (found when
// update/ was added: E_INTERNAL "Cannot find module /usr/lib/milkyway/update/index.ts").
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { productionModules, RUNTIME_DIRS } from '../../imagebuild/coreos-tree.ts';
import { ROOT } from '../helpers.ts';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts') && !e.parentPath.includes('node_modules'))
      out.push(join(e.parentPath, e.name));
  }
  return out;
}

test('every part the agent reaches is shipped in CoreOS', async (t) => {
  const seen = new Set<string>(['agent']);
  const queue = ['agent'];
  while (queue.length > 0) {
    const part = queue.pop() as string;
    for (const file of await sources(join(ROOT, part))) {
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/from '(\.\.?\/[^']+)'|import\('(\.\.?\/[^']+)'\)/g)) {
        const target = relative(ROOT, join(file, '..', m[1] ?? m[2] ?? ''));
        const top = target.split('/')[0] ?? '';
        if (top === '' || top.startsWith('..') || seen.has(top)) continue;
        seen.add(top);
        queue.push(top);
      }
    }
  }
  const missing = [...seen].filter((p) => !RUNTIME_DIRS.includes(p));
  t.deepEqual(missing, [], `parts the agent imports that CoreOS lacks (RUNTIME_DIRS): ${missing.join(', ')}`);
  t.true(seen.has('update'));
});

test('CoreOS ships every npm package the shipped parts import, and no compiler an optional peer names', async (t) => {
  const shipped = new Set(await productionModules());
  const bare = new Set<string>();
  for (const part of RUNTIME_DIRS) {
    for (const file of await sources(join(ROOT, part))) {
      if (file.includes('/test/')) continue;
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/from '([^.'/][^']*)'|import\('([^.'/][^']*)'\)/g)) {
        const spec = m[1] ?? m[2] ?? '';
        if (spec.startsWith('node:')) continue;
        const parts = spec.split('/');
        bare.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
      }
    }
  }
  // pqclean is C source for the stage-1 verifier's build (imagebuild/, never run in CoreOS).
  const missing = [...bare].filter((p) => !shipped.has(`node_modules/${p}`) && p !== 'pqclean');
  t.deepEqual(missing, [], `packages imported by shipped code that CoreOS lacks: ${missing.join(', ')}`);
  // valibot names typescript as an optional peer; npm lists it because the dev install has it.
  t.false(shipped.has('node_modules/typescript'), 'the TypeScript compiler is not shipped');
  t.false([...shipped].some((d) => d.startsWith('node_modules/@typescript/')));
});
