// Shared by every format's tests: a table of hostile inputs each refused with its part's
// code and a key path (never E_INTERNAL, never a crash), mutations of a valid value at every
// key path, and a cross-check of the published doc/<name>.schema.json with Ajv (a JSON
// Schema validator nobody here wrote).
import type { ExecutionContext } from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMilkyWayError } from '../common/error.ts';
import { shown } from '../common/schema.ts';
import { ROOT } from './helpers.ts';

/** Runs `f` and returns the error it throws (undefined when it throws nothing). */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The key path a part's error names (`details.field`, `details.key` or `path`). */
export function keyPathOf(e: unknown): string | undefined {
  const d = (e as { details?: { field?: string; key?: string } }).details;
  return d?.field ?? d?.key ?? (e as { path?: string }).path;
}

/** Asserts `f` is refused with `code` naming `keyPath` (in the error's fields and its message). */
export function assertRefused(
  t: ExecutionContext,
  f: () => unknown,
  code: string,
  keyPath: string,
  label: string,
): void {
  const e = thrown(f);
  if (!isMilkyWayError(e)) {
    t.fail(`${label}: expected ${code}, got ${e === undefined ? 'no error' : String(e)}`);
    return;
  }
  t.is(e.code, code, `${label}: ${e.message}`);
  t.is(keyPathOf(e), keyPath, `${label}: ${e.message}`);
  t.true(e.message.includes(`${keyPath}:`), `${label}: message names ${keyPath}: ${e.message}`);
}

/** Nested objects `depth` deep (`{a:{a:…}}`), built without recursion. */
export function deep(depth: number): unknown {
  let x: unknown = 1;
  for (let i = 0; i < depth; i++) x = { a: x };
  return x;
}

/** Values of every wrong kind, thrown at each key path of a valid value. */
export const WRONG: readonly unknown[] = [
  null,
  true,
  -1,
  1.5,
  1e308,
  2 ** 60,
  '',
  'x'.repeat(100_000),
  [],
  {},
];

/** Every key path of a JSON value, with the value's parent and key, breadth first. */
export function keyPaths(value: unknown): Array<{ path: string; set: (x: unknown) => unknown }> {
  const out: Array<{ path: string; set: (x: unknown) => unknown }> = [];
  const walk = (v: unknown, path: string, set: (x: unknown) => unknown): void => {
    out.push({ path, set });
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        walk(item, `${path}[${i}]`, (x) => set(v.map((y, j) => (j === i ? x : y))));
      });
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, item] of Object.entries(v)) {
        walk(item, path === '' ? k : `${path}.${k}`, (x) => set({ ...v, [k]: x }));
      }
    }
  };
  walk(value, '', (x) => x);
  return out;
}

/**
 * Replaces each key path of `valid` by each WRONG value and by a 10,000-deep object: every
 * result is accepted or refused with `code` and a key path — never another error.
 */
export function assertMutationsRefusedCleanly(
  t: ExecutionContext,
  valid: unknown,
  parse: (x: unknown) => unknown,
  code: string,
): void {
  let refused = 0;
  for (const { path, set } of keyPaths(valid)) {
    for (const w of [...WRONG, deep(10_000)]) {
      const e = thrown(() => parse(set(w)));
      if (e === undefined) continue;
      refused++;
      if (!isMilkyWayError(e) || e.code !== code) {
        t.fail(`${path || '(top level)'} = ${shown(w)}: ${String(e)}`);
        return;
      }
      if (keyPathOf(e) === undefined) t.fail(`${path}: ${e.message} names no key path`);
    }
  }
  t.true(refused > 0);
}

/** An Ajv validator for the committed doc/<name>.schema.json. */
export function publishedValidator(name: string): (x: unknown) => boolean {
  const schema = JSON.parse(readFileSync(join(ROOT, 'doc', `${name}.schema.json`), 'utf8')) as object;
  const ajv = new Ajv2020({ strict: true, allErrors: false });
  const f = ajv.compile(schema);
  return (x) => f(x) === true;
}
