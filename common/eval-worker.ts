// Worker threads started from a source string (`new Worker(src, { eval: true })`) assembled
// from functions' own runtime text, instead of from a .ts file: every worker isolate that
// loads a .ts file instantiates Node's type stripper again, which made a worker take 50–80 ms
// to answer its first message instead of 25–30 ms (measured on 2 cores). This relies on
// Node's type stripping leaving runtime code as written; a transpiler that renames or adds
// helpers would break it, and the tests that run these workers would fail.

export interface EvalWorkerParts {
  /** Module → the names the worker destructures from `require(module)`. */
  requires: Readonly<Record<string, readonly string[]>>;
  /** Module-level constants the functions use. */
  constants?: Readonly<Record<string, number>>;
  /** Functions and classes the worker needs, by their source text. */
  definitions: readonly { toString(): string }[];
  /** The worker's body, called with `mainArgs` (names of definitions). */
  main: { toString(): string };
  mainArgs?: readonly string[];
}

/**
 * CommonJS source binding every free name the parts use; a missing one fails the worker
 * with a ReferenceError at its first use.
 */
export function evalWorkerSource(p: EvalWorkerParts): string {
  return [
    "'use strict';",
    ...Object.entries(p.requires).map(([m, names]) => `const { ${names.join(', ')} } = require('${m}');`),
    ...Object.entries(p.constants ?? {}).map(([k, v]) => `const ${k} = ${v};`),
    ...p.definitions.map((d) => d.toString()),
    `(${p.main.toString()})(${(p.mainArgs ?? []).join(', ')});`,
  ].join('\n');
}
