// Kernel modules with their dependencies, in load order, from the package's modules.dep
// (depmod's format: `path: dep dep …`, paths relative to lib/modules/VERSION).
// busybox insmod loads one file and resolves nothing itself, hence the ordered list.
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImageError } from './image-error.ts';

/** A module's canonical name: `dm-verity.ko.zst` → `dm_verity` (the kernel treats - and _ alike). */
export function moduleName(pathOrName: string): string {
  return basename(pathOrName)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replaceAll('-', '_');
}

export interface ModuleDeps {
  /** canonical name → path relative to the modules directory */
  paths: Map<string, string>;
  /** canonical name → direct dependencies (canonical names) */
  deps: Map<string, string[]>;
  /** names built into the kernel (modules.builtin): asking for them is not an error */
  builtin: Set<string>;
}

/** Parses modules.dep (and modules.builtin when present) of `modulesDir`. */
export async function readModuleDeps(modulesDir: string): Promise<ModuleDeps> {
  let text: string;
  try {
    text = await readFile(join(modulesDir, 'modules.dep'), 'utf8');
  } catch (e) {
    throw new ImageError(
      'E_MODULES_DEP',
      `Cannot read ${join(modulesDir, 'modules.dep')}: run depmod first`,
      {
        cause: e,
        path: modulesDir,
      },
    );
  }
  const paths = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const name = moduleName(path);
    paths.set(name, path);
    deps.set(
      name,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter((s) => s !== '')
        .map(moduleName),
    );
  }
  const builtin = new Set<string>();
  const b = await readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  for (const line of b.split('\n')) if (line.trim() !== '') builtin.add(moduleName(line.trim()));
  return { paths, deps, builtin };
}

/**
 * Absolute paths of `names` and everything they depend on, each after its dependencies,
 * without duplicates. Built-in modules are skipped; an unknown name is an error.
 */
export async function moduleClosure(
  modulesDir: string,
  version: string,
  names: readonly string[],
): Promise<string[]> {
  const db = await readModuleDeps(modulesDir);
  const order: string[] = [];
  const done = new Set<string>();
  // Iterative post-order DFS: modules.dep is a DAG in practice, but a cycle in a corrupt
  // file must not recurse forever, so `onPath` reports it instead.
  for (const requested of names) {
    const root = moduleName(requested);
    if (done.has(root)) continue;
    if (!db.paths.has(root)) {
      if (db.builtin.has(root)) continue;
      throw new ImageError(
        'E_MODULE_NOT_FOUND',
        `Cannot find kernel module ${requested} in ${version}: not in modules.dep`,
        {
          path: modulesDir,
        },
      );
    }
    const onPath = new Set<string>();
    const stack: { name: string; next: number }[] = [{ name: root, next: 0 }];
    onPath.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top === undefined) break;
      const children = db.deps.get(top.name) ?? [];
      const child = children[top.next];
      if (child === undefined) {
        stack.pop();
        onPath.delete(top.name);
        if (!done.has(top.name)) {
          done.add(top.name);
          order.push(top.name);
        }
        continue;
      }
      top.next++;
      if (done.has(child)) continue;
      if (onPath.has(child)) {
        throw new ImageError(
          'E_MODULE_CYCLE',
          `Cannot order kernel modules: ${child} depends on itself through ${top.name}`,
        );
      }
      if (!db.paths.has(child)) {
        throw new ImageError(
          'E_MODULE_NOT_FOUND',
          `Cannot find kernel module ${child} (needed by ${top.name}) in modules.dep`,
          {
            path: modulesDir,
          },
        );
      }
      onPath.add(child);
      stack.push({ name: child, next: 0 });
    }
  }
  return order.map((n) => join(modulesDir, db.paths.get(n) ?? ''));
}
