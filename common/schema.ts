// One schema per file format (doc/internal-apis.md, "common/schema.ts"): a Valibot schema is
// the single definition from which a format's TypeScript type (`Output<S>`), its defaults,
// its validator with key paths, and its published doc/<name>.schema.json all come. The
// JSON Schema is emitted by scripts/schemas.ts (`npm run schemas`), never written by hand.
//
// Valibot over TypeBox: measured here, `import 'valibot'` takes ~5-10 ms (one module) while
// `typebox/compile` takes ~400 ms (709 modules), and the agent (PID 1) and every CLI verb load
// their format at start. Two Valibot behaviours these helpers close: `object`/`record` accept
// arrays (so `[]` passed for `{}`), and `number()` accepts Infinity (`1e999` in JSON).
import * as v from 'valibot';

export { v };

// biome-ignore lint/suspicious/noExplicitAny: Valibot's generic schema type needs its issue parameter
type AnyIssue = v.BaseIssue<any>;
export type Schema = v.GenericSchema;
export type Output<S extends Schema> = v.InferOutput<S>;
type Entries = v.ObjectEntries;

/** A value as an error message shows it: short, never the whole of a hostile input. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const s = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
    return s;
  }
  return String(value);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const plain = v.custom<Record<string, unknown>>(
  isPlainObject,
  (i) => `expected an object, got ${shown(i.input)}`,
);

/** An object whose unknown keys are refused ("unknown key"), so a typo cannot fall back to a default. */
export function object<E extends Entries>(entries: E) {
  return v.pipe(plain, v.strictObject(entries));
}

/** An object whose unknown keys are kept (typed unknown): a wire message read across versions. */
export function openObject<E extends Entries>(entries: E) {
  return v.pipe(plain, v.looseObject(entries));
}

/** A config file's top level: `object()` plus the `$schema` key an editor uses to find the schema. */
export function configObject<E extends Entries>(entries: E) {
  return object({ $schema: v.exactOptional(v.string()), ...entries });
}

/**
 * A discriminated union: `key` picks the member, so an error is about that member only
 * (`hello: role: missing`), never a list of every member's complaints.
 */
export function variant<K extends string, O extends v.VariantOptions<K>>(key: K, options: O) {
  // No plain-object guard needed: an array parsed from JSON has no `key`, so it is refused.
  return v.variant(key, options, (i) =>
    i.expected === 'Object'
      ? `expected an object, got ${shown(i.input)}`
      : `unknown ${key} ${shown(i.input)}`,
  );
}

/** An object used as a map (`groups: { web: … }`); at most `max` entries. */
export function record<K extends v.GenericSchema<string, string>, V extends Schema>(
  key: K,
  value: V,
  max = 10_000,
) {
  return v.pipe(
    plain,
    v.record(key, value),
    v.maxEntries(max, (i) => `expected at most ${max} entries, got ${String(i.received)}`),
  );
}

/** An object whose content another part checks (e.g. a keys/ envelope's payload). */
export const anyObject = v.pipe(plain, v.record(v.string(), v.unknown()));

/** An array of at most `max` items. */
export function list<S extends Schema>(item: S, max = 10_000) {
  return v.pipe(
    v.array(item, (i) => `expected an array, got ${shown(i.input)}`),
    v.maxLength(max, (i) => `expected at most ${max} items, got ${String(i.received)}`),
  );
}

export interface TextOptions {
  /** What the value must look like, for the message: `must be lower-case letters, digits and -`. */
  hint?: string;
  pattern?: RegExp;
  /** Longest accepted length (default 4096). */
  max?: number;
}

/** A non-empty string; with `pattern`, the message is `"<value>" <hint>`. */
export function text(o: TextOptions = {}) {
  const max = o.max ?? 4096;
  const items: v.PipeItem<string, string, AnyIssue>[] = [
    v.minLength(1, 'expected a non-empty string, got ""'),
    v.maxLength(max, (i) => `expected at most ${max} characters, got ${String(i.received)}`),
  ];
  if (o.pattern !== undefined) {
    const hint = o.hint ?? `must match ${o.pattern.source}`;
    items.push(v.regex(o.pattern, (i) => `${shown(i.input)} ${hint}`));
  }
  return v.pipe(
    v.string((i) => `expected a non-empty string, got ${shown(i.input)}`),
    ...items,
  );
}

/** An absolute path (no NUL), as the agent's config wants. */
export function absolutePath() {
  return v.pipe(
    v.string((i) => `expected a non-empty path, got ${shown(i.input)}`),
    v.minLength(1, 'expected a non-empty path'),
    v.maxLength(4096, 'expected a path of at most 4096 characters'),
    v.regex(/^\/[^\0]*$/, (i) => `expected an absolute path, got ${shown(i.input)}`),
  );
}

/** A whole number in [min, max]; `what` names it in the message (`a whole number of MiB`). */
export function int(min: number, max: number, what = 'an integer') {
  const message = (i: AnyIssue) => `expected ${what} from ${min} to ${max}, got ${shown(i.input)}`;
  return v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message));
}

/** true or false. */
export function flag() {
  return v.boolean((i) => `expected true or false, got ${shown(i.input)}`);
}

/** One of a few strings. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const list = values.map((s) => JSON.stringify(s)).join(', ');
  return v.picklist(values, (i) => `expected one of ${list}, got ${shown(i.input)}`);
}

/** Where the first problem is (`partitions.data`, `layers[1]`, `groups["a b"]`) and what it is. */
export interface SchemaIssue {
  /** Key path from the top; `(top level)` for the value itself. */
  keyPath: string;
  problem: string;
}

const KEY = /^[A-Za-z_$][\w$-]*$/;

/** `a.b[1].c` from a Valibot issue path. */
export function keyPathOf(path: readonly v.IssuePathItem[] | undefined, prefix = ''): string {
  let out = prefix;
  for (const item of path ?? []) {
    const k = item.key;
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && KEY.test(k)) out += out === '' ? k : `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out === '' ? '(top level)' : out;
}

// The message for issues whose schema gives none (plain Valibot schemas inside a format).
function fallbackMessage(issue: AnyIssue): string {
  const got = shown(issue.input);
  if (issue.type === 'strict_object' || issue.type === 'object' || issue.type === 'loose_object') {
    if (issue.expected === 'never') return 'unknown key';
    if (issue.received === 'undefined') return 'missing';
    return `expected an object, got ${got}`;
  }
  if (issue.type === 'variant') return `expected ${issue.expected ?? 'a known value'}, got ${got}`;
  if (issue.type === 'literal') return `expected ${issue.expected ?? 'a fixed value'}, got ${got}`;
  if (issue.type === 'picklist' || issue.type === 'enum')
    return `expected one of ${issue.expected}, got ${got}`;
  if (issue.kind === 'schema')
    return `expected ${issue.expected === 'Object' ? 'an object' : issue.expected}, got ${got}`;
  return `${got} does not fit: expected ${issue.expected ?? issue.type}`;
}

/** Checks `value` against `schema`: the value with defaults filled, or the first issue. */
export function check<S extends Schema>(
  schema: S,
  value: unknown,
  prefix = '',
): { ok: true; value: Output<S> } | { ok: false; issue: SchemaIssue } {
  const r = v.safeParse(schema, value, { abortEarly: true, message: fallbackMessage });
  if (r.success) return { ok: true, value: r.output };
  let first = r.issues[0] as AnyIssue;
  let path: v.IssuePathItem[] = [...(first.path ?? [])];
  // A union reports one issue per branch, with paths relative to the union; the branch that
  // got furthest into the value says most (`keys.generate: expected true or false`).
  while (first.type === 'union' && first.issues !== undefined) {
    let deeper: AnyIssue | undefined;
    for (const i of first.issues) {
      if ((i.path?.length ?? 0) > (deeper?.path?.length ?? 0)) deeper = i;
    }
    if (deeper === undefined) break;
    path = [...path, ...(deeper.path ?? [])];
    first = deeper;
  }
  return { ok: false, issue: { keyPath: keyPathOf(path, prefix), problem: first.message } };
}

/** A file format: its schema, its published JSON Schema's name, and its error. */
export interface Format<S extends Schema> {
  /** File stem: doc/<name>.schema.json, `$id` …/schemas/<name>.json. */
  readonly name: string;
  readonly title: string;
  readonly schema: S;
  /** Sub-schemas the published JSON Schema names once in `$defs` (instead of inlining each use). */
  readonly definitions?: Readonly<Record<string, Schema>>;
  /** The value with defaults, or the part's error naming the key path. */
  parse(value: unknown, source?: string): Output<S>;
}

export function defineFormat<S extends Schema>(o: {
  name: string;
  title: string;
  schema: S;
  definitions?: Readonly<Record<string, Schema>>;
  /** The part's error for a refused value (its code, its wording around `keyPath: problem`). */
  error: (issue: SchemaIssue, source: string | undefined) => Error;
}): Format<S> {
  return {
    name: o.name,
    title: o.title,
    schema: o.schema,
    ...(o.definitions === undefined ? {} : { definitions: o.definitions }),
    parse(value, source) {
      const r = check(o.schema, value);
      if (!r.ok) throw o.error(r.issue, source);
      return r.value;
    },
  };
}

/** The `$id` of a published schema; `$schema` keys in config files may name it. */
export function schemaId(name: string): string {
  return `https://milkyway.invalid/schemas/${name}.json`;
}
