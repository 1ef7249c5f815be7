// A module's actions and verb as its manifest declares them (doc/layer-format.md, "Modules"):
// what an operator may run on a peer with `mway module run`, with a JSON Schema for the
// arguments, the privileges the sandbox grants (nothing else), a bound on the output and a
// timeout. The argument and output schemas are a subset of JSON Schema (draft 2020-12),
// declared here as Valibot schemas, so the manifest's published schema states the subset, and
// turned into Valibot validators by `moduleValueSchema`: the peer and the operator check
// arguments with the same code, through common/schema.ts (key paths in every error).
// Nesting is bounded by construction (MAX_SCHEMA_DEPTH), never by recursion on input.
import { schema } from '../common/index.ts';
import { argv, MAX_LIST, NAME, named, str } from './service.ts';

const { flag, int, list, oneOf, record, v, variant } = schema;
type Output<S extends schema.Schema> = schema.Output<S>;

const about = <S extends schema.Schema>(s: S, description: string) => v.pipe(s, v.description(description));

/** Objects and arrays nest at most this deep in an argument or output schema. */
export const MAX_SCHEMA_DEPTH = 3;
/** Properties of one object, items of one enum. */
const MAX_PROPERTIES = 64;
/** The most an action may print (its structured output on stdout). */
export const MAX_MODULE_OUTPUT = 256 * 1024;
export const DEFAULT_MODULE_OUTPUT = 64 * 1024;
/** The longest an action may run, in seconds. */
export const MAX_MODULE_TIMEOUT_SEC = 3600;
export const DEFAULT_MODULE_TIMEOUT_SEC = 30;

/** An argument or property name, as `--arg NAME=VALUE` spells it. */
export const ARG_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/;
/** A verb a module adds to `mway` (`mway vpn …`). */
export const VERB_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const CAP = /^CAP_[A-Z_]{2,32}$/;
/** A device node the sandbox may see, bound from the host's /dev (`/dev/kvm`, `/dev/net/tun`). */
const DEVICE = /^\/dev\/[a-z0-9][a-z0-9_.-]{0,62}(\/[a-z0-9][a-z0-9_.-]{0,62}){0,2}$/;

const description = () => v.exactOptional(str(1024));
// min/maxValue also refuse Infinity (1e999 in JSON), and convert to JSON Schema.
const finite = (what: string) => {
  const message = (i: { input: unknown }) => `expected ${what}, got ${schema.shown(i.input)}`;
  return v.pipe(
    v.number(message),
    v.minValue(-Number.MAX_VALUE, message),
    v.maxValue(Number.MAX_VALUE, message),
  );
};
const count = () => int(0, 2 ** 31, 'a count');

const scalarNodes = [
  v.strictObject({
    type: v.literal('string'),
    description: description(),
    enum: v.exactOptional(list(str(), MAX_PROPERTIES)),
    minLength: v.exactOptional(count()),
    maxLength: v.exactOptional(count()),
    pattern: about(v.exactOptional(str(1024)), 'An ECMAScript regular expression (u flag), unanchored'),
  }),
  v.strictObject({
    type: v.literal('integer'),
    description: description(),
    enum: v.exactOptional(list(int(-(2 ** 53) + 1, 2 ** 53 - 1), MAX_PROPERTIES)),
    minimum: v.exactOptional(int(-(2 ** 53) + 1, 2 ** 53 - 1)),
    maximum: v.exactOptional(int(-(2 ** 53) + 1, 2 ** 53 - 1)),
  }),
  v.strictObject({
    type: v.literal('number'),
    description: description(),
    minimum: v.exactOptional(finite('a number')),
    maximum: v.exactOptional(finite('a number')),
  }),
  v.strictObject({ type: v.literal('boolean'), description: description() }),
] as const;

const propertyName = () => named(ARG_NAME, 'a property name (a letter, then a-z A-Z 0-9 _ -, at most 64)');

// Written out level by level: a schema of depth N contains one of depth N-1, so the
// validator's own nesting is fixed here and a hostile manifest cannot make it deeper.
function objectNodeAt(depth: number) {
  const inner = nodeAt(depth - 1);
  return v.strictObject({
    type: v.literal('object'),
    description: description(),
    properties: v.optional(record(propertyName(), inner, MAX_PROPERTIES), {}),
    required: v.exactOptional(list(propertyName(), MAX_PROPERTIES)),
    additionalProperties: about(
      v.exactOptional(flag()),
      'false refuses properties not listed (JSON Schema: absent means allowed)',
    ),
  });
}

const nodes = new Map<number, schema.Schema>();

// One instance per depth, so the published JSON Schema names each once ($defs, below).
function nodeAt(depth: number): schema.Schema {
  let n = nodes.get(depth);
  if (n === undefined) {
    n = makeNode(depth);
    nodes.set(depth, n);
  }
  return n;
}

function makeNode(depth: number): schema.Schema {
  if (depth === 0) return variant('type', [...scalarNodes]);
  return variant('type', [
    ...scalarNodes,
    v.strictObject({
      type: v.literal('array'),
      description: description(),
      items: nodeAt(depth - 1),
      minItems: v.exactOptional(count()),
      maxItems: v.exactOptional(count()),
    }),
    objectNodeAt(depth),
  ]);
}

/** One node of an argument or output schema (the JSON Schema subset). */
export type ValueSchema =
  | {
      type: 'string';
      description?: string;
      enum?: string[];
      minLength?: number;
      maxLength?: number;
      pattern?: string;
    }
  | { type: 'integer'; description?: string; enum?: number[]; minimum?: number; maximum?: number }
  | { type: 'number'; description?: string; minimum?: number; maximum?: number }
  | { type: 'boolean'; description?: string }
  | { type: 'array'; description?: string; items: ValueSchema; minItems?: number; maxItems?: number }
  | ObjectSchema;
export interface ObjectSchema {
  type: 'object';
  description?: string;
  properties: Record<string, ValueSchema>;
  required?: string[];
  additionalProperties?: boolean;
}

/** The value-schema levels by name, for the published JSON Schema's `$defs`. */
export const VALUE_SCHEMA_DEFINITIONS: Readonly<Record<string, schema.Schema>> = Object.fromEntries(
  Array.from({ length: MAX_SCHEMA_DEPTH + 1 }, (_, d) => [`valueSchema${d}`, nodeAt(d)]),
);

/** The arguments are one object (what `--arg k=v` builds). */
const ArgsSchema = objectNodeAt(MAX_SCHEMA_DEPTH);

const Privileges = schema.object({
  user: about(
    v.optional(oneOf(['nobody', 'root']), 'nobody'),
    'root runs as uid 0; nobody as the layer’s own dynamic uid',
  ),
  capabilities: about(
    v.optional(list(named(CAP, 'a capability name like CAP_NET_BIND_SERVICE'), 64), []),
    'Capabilities kept (all others dropped); CAP_NET_ADMIN comes only with network admin',
  ),
  network: about(
    v.optional(oneOf(['none', 'host', 'admin']), 'none'),
    'none: an own network namespace with only lo; host: the host network; admin: the host network and CAP_NET_ADMIN',
  ),
  devices: about(
    v.optional(list(named(DEVICE, 'a device path under /dev'), 16), []),
    'Device nodes bound in from the host (/dev/kvm, /dev/net/tun); the sandbox has only null, zero, random and the like otherwise',
  ),
  data: about(
    v.optional(
      schema.object({
        private: about(v.optional(flag(), false), "The module's own secure/<layer> at /data/secure"),
        groups: about(
          v.optional(list(named(NAME, 'a group name'), MAX_LIST), []),
          'group/<g> at /data/group/<g>; each must be in the layer’s data.groups',
        ),
        common: about(v.optional(flag(), false), 'common/ at /data/common'),
      }),
      {},
    ),
    'Which of the layer’s data the action touches (a subset of the layer’s data); nothing else is bound in',
  ),
});

/** One action of a module (`actions[i]`). */
export const ActionSchema = schema.object({
  name: named(NAME, 'a lowercase name (a-z 0-9 . _ -, at most 64)'),
  argv: about(
    argv(),
    'Program and arguments inside the module’s root; the arguments arrive as one JSON object on stdin',
  ),
  description: v.optional(str(), ''),
  args: about(
    v.optional(ArgsSchema, { type: 'object', properties: {}, additionalProperties: false }),
    'JSON Schema (the subset in doc/layer-format.md) the arguments must match, on the operator and on the peer',
  ),
  privileges: about(v.optional(Privileges, {}), 'What the sandbox grants; nothing else'),
  output: about(
    v.optional(
      schema.object({
        maxBytes: about(
          v.optional(int(2, MAX_MODULE_OUTPUT, 'a size in bytes'), DEFAULT_MODULE_OUTPUT),
          'The most the action may print on stdout (its one JSON value); more and it is killed',
        ),
        schema: about(v.exactOptional(nodeAt(MAX_SCHEMA_DEPTH)), 'JSON Schema the output must match'),
      }),
      {},
    ),
    'What the action returns: one JSON value on stdout',
  ),
  timeoutSec: about(
    v.optional(int(1, MAX_MODULE_TIMEOUT_SEC, 'seconds'), DEFAULT_MODULE_TIMEOUT_SEC),
    'Killed (with everything it started) after this long',
  ),
});

/** The top-level verb a module adds to `mway`. */
export const VerbSchema = schema.object({
  name: named(VERB_NAME, 'a verb (a-z, then a-z 0-9 -, at most 32)'),
  description: v.optional(str(256), ''),
});

export type ModuleAction = Omit<Output<typeof ActionSchema>, 'args' | 'output'> & {
  args: ObjectSchema;
  output: { maxBytes: number; schema?: ValueSchema };
};
export type ModuleVerb = Output<typeof VerbSchema>;

/**
 * The rules of one action the schema cannot state: its data is a subset of the layer's, a
 * network capability comes with `network: admin`, patterns compile, ranges are not empty,
 * `required` names listed properties. `fail(keyPath, problem)` throws the caller's error.
 */
export function checkAction(
  a: ModuleAction,
  at: string,
  layerData: { private: boolean; groups: readonly string[]; common: boolean },
  fail: (keyPath: string, problem: string) => never,
): void {
  const d = a.privileges.data;
  if (d.private && !layerData.private) fail(`${at}privileges.data.private`, 'the layer has no private data');
  if (d.common && !layerData.common)
    fail(`${at}privileges.data.common`, 'the layer does not use common data');
  d.groups.forEach((g, i) => {
    if (!layerData.groups.includes(g))
      fail(`${at}privileges.data.groups[${i}]`, `${JSON.stringify(g)} is not in the layer's data.groups`);
  });
  a.privileges.capabilities.forEach((c, i) => {
    if (c === 'CAP_NET_ADMIN')
      fail(`${at}privileges.capabilities[${i}]`, 'declare network "admin" instead of CAP_NET_ADMIN');
  });
  checkNode(a.args, `${at}args`, fail, 0);
  if (a.output.schema !== undefined) checkNode(a.output.schema, `${at}output.schema`, fail, 0);
}

function checkNode(
  n: ValueSchema,
  at: string,
  fail: (keyPath: string, problem: string) => never,
  depth: number,
): void {
  // Bounded: the schema pass admitted at most MAX_SCHEMA_DEPTH levels.
  if (depth > MAX_SCHEMA_DEPTH) fail(at, `nests deeper than ${MAX_SCHEMA_DEPTH}`);
  if (n.type === 'string') {
    if (n.pattern !== undefined) {
      try {
        new RegExp(n.pattern, 'u');
      } catch (e) {
        fail(`${at}.pattern`, `is not a regular expression: ${(e as Error).message}`);
      }
    }
    if (n.minLength !== undefined && n.maxLength !== undefined && n.minLength > n.maxLength)
      fail(`${at}.maxLength`, 'is below minLength');
  } else if (n.type === 'integer' || n.type === 'number') {
    if (n.minimum !== undefined && n.maximum !== undefined && n.minimum > n.maximum)
      fail(`${at}.maximum`, 'is below minimum');
  } else if (n.type === 'array') {
    if (n.minItems !== undefined && n.maxItems !== undefined && n.minItems > n.maxItems)
      fail(`${at}.maxItems`, 'is below minItems');
    checkNode(n.items, `${at}.items`, fail, depth + 1);
  } else if (n.type === 'object') {
    (n.required ?? []).forEach((r, i) => {
      if (!(r in n.properties)) fail(`${at}.required[${i}]`, `names no property ${JSON.stringify(r)}`);
    });
    for (const [k, p] of Object.entries(n.properties)) checkNode(p, `${at}.properties.${k}`, fail, depth + 1);
  }
}

// Code-point length, as JSON Schema counts a string (not UTF-16 units).
const codePoints = (s: string) => [...s].length;

/**
 * One action as another party reports it (a peer's signed status): the action if it is one a
 * manifest could hold, undefined otherwise — a reader skips it instead of trusting its shape.
 */
export function readModuleAction(json: unknown): ModuleAction | undefined {
  const r = schema.check(ActionSchema, json);
  if (!r.ok) return undefined;
  const a = r.value as unknown as ModuleAction;
  try {
    checkAction(a, '', { private: true, groups: a.privileges.data.groups, common: true }, (k, p) => {
      throw new RangeError(`${k}: ${p}`);
    });
  } catch {
    return undefined;
  }
  return a;
}

type Test<T> = [ok: (x: T) => boolean, problem: (x: T) => string];

/** One check that reports the first failed test with its own message. */
function tests<T>(list: Test<T>[]) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const failed = list.find(([ok]) => !ok(dataset.value));
    if (failed !== undefined) addIssue({ message: failed[1](dataset.value) });
  });
}

/**
 * The Valibot validator of a (checked) argument or output schema: JSON Schema's meaning of
 * each keyword, so a value passes here exactly when a JSON Schema validator accepts it
 * (test/layers/module-action.test.ts cross-checks with Ajv).
 */
export function moduleValueSchema(n: ValueSchema, depth = 0): schema.Schema {
  if (depth > MAX_SCHEMA_DEPTH) throw new RangeError(`Schema nests deeper than ${MAX_SCHEMA_DEPTH}`);
  const shown = schema.shown;
  switch (n.type) {
    case 'string': {
      const t: Test<string>[] = [];
      const { minLength, maxLength, pattern } = n;
      if (minLength !== undefined)
        t.push([(s) => codePoints(s) >= minLength, () => `expected at least ${minLength} characters`]);
      if (maxLength !== undefined)
        t.push([(s) => codePoints(s) <= maxLength, () => `expected at most ${maxLength} characters`]);
      if (pattern !== undefined) {
        const re = new RegExp(pattern, 'u');
        t.push([(s) => re.test(s), (s) => `${shown(s)} does not match ${pattern}`]);
      }
      if (n.enum !== undefined) {
        const allowed = n.enum;
        t.push([(s) => allowed.includes(s), (s) => `${shown(s)} is not one of ${allowed.join(', ')}`]);
      }
      return v.pipe(
        v.string((i) => `expected a string, got ${shown(i.input)}`),
        tests(t),
      );
    }
    case 'integer':
    case 'number': {
      const what = n.type === 'integer' ? 'an integer' : 'a number';
      const t: Test<number>[] = [[(x) => Number.isFinite(x), (x) => `expected ${what}, got ${shown(x)}`]];
      if (n.type === 'integer')
        t.push([(x) => Number.isInteger(x), (x) => `expected an integer, got ${shown(x)}`]);
      const { minimum, maximum } = n;
      if (minimum !== undefined)
        t.push([(x) => x >= minimum, (x) => `expected at least ${minimum}, got ${shown(x)}`]);
      if (maximum !== undefined)
        t.push([(x) => x <= maximum, (x) => `expected at most ${maximum}, got ${shown(x)}`]);
      if (n.type === 'integer' && n.enum !== undefined) {
        const allowed = n.enum;
        t.push([(x) => allowed.includes(x), (x) => `${shown(x)} is not one of ${allowed.join(', ')}`]);
      }
      return v.pipe(
        v.number((i) => `expected ${what}, got ${shown(i.input)}`),
        tests(t),
      );
    }
    case 'boolean':
      return schema.flag();
    case 'array': {
      const t: Test<unknown[]>[] = [];
      const { minItems, maxItems } = n;
      if (minItems !== undefined)
        t.push([(a) => a.length >= minItems, () => `expected at least ${minItems} items`]);
      if (maxItems !== undefined)
        t.push([(a) => a.length <= maxItems, () => `expected at most ${maxItems} items`]);
      return v.pipe(
        v.array(moduleValueSchema(n.items, depth + 1), (i) => `expected an array, got ${shown(i.input)}`),
        tests(t),
      );
    }
    case 'object': {
      const required = new Set(n.required ?? []);
      const entries: Record<string, schema.Schema> = {};
      for (const [k, p] of Object.entries(n.properties)) {
        const s = moduleValueSchema(p, depth + 1);
        entries[k] = required.has(k) ? s : v.exactOptional(s);
      }
      return n.additionalProperties === false ? schema.object(entries) : schema.openObject(entries);
    }
  }
}
