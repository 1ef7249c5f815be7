// Strict argument parsing for every MilkyWay binary, from the citty argument table of the
// verb. citty parses leniently (an unknown flag is kept, a missing value becomes `''`, extra
// words are dropped into `_`), and for a security tool a check that silently does not run is
// a defect; so the verb's table is handed to node:util's parseArgs in strict mode, and what
// it refuses becomes a UsageError (E_USAGE, exit 2) naming the flag. citty's parse is never
// run: this one result is what the verb's `run` receives.
//
// The citty table is extended by three optional fields (citty ignores them):
//   - `repeatable: true` on a string flag: it may be given more than once; use values().
//   - `numeric: 'integer' | 'number'` on a string flag: the value must be a non-negative
//     integer (or decimal number).
//   - `variadic: true` on the last positional: it takes every further word, and everything
//     after `--` verbatim (`mway run --group g -- ls -la /tmp`); `_` holds them all.
// A verb without a variadic positional refuses extra words.
import { parseArgs } from 'node:util';
import type { ArgsDef } from 'citty';
import { UsageError } from './usage-error.ts';

/** What a verb's `run` receives as `args`: each flag under its kebab and camel name, and `_`. */
export type StrictArgs = Record<string, unknown> & { _: string[] };

interface ArgExtras {
  type?: string;
  alias?: string | string[];
  default?: unknown;
  required?: boolean;
  options?: string[];
  repeatable?: boolean;
  numeric?: 'integer' | 'number';
  variadic?: boolean;
}

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function aliases(def: ArgExtras): string[] {
  return typeof def.alias === 'string' ? [def.alias] : (def.alias ?? []);
}

/**
 * The flag a node:util parse error names (`'--frobnicate'`, `'-o, --out <value>'`): of the
 * spellings it quotes, the one the user typed.
 */
function flagIn(message: string, rawArgs: readonly string[]): string | undefined {
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const names = quoted.match(/--?[^\s,<=]+/g) ?? [];
  return names.find((n) => rawArgs.some((a) => a === n || a.startsWith(`${n}=`))) ?? names[0];
}

/** Whether the verb passes words on (has a variadic positional); its help shows `--`. */
export function passesArgv(argsDef: ArgsDef): boolean {
  return Object.values(argsDef).some((d) => (d as ArgExtras).variadic === true);
}

/**
 * All values of a repeatable flag (`repeatable: true`), in the order given.
 * @deprecated for `repeated(rawArgs, flag)`: use `values(args.flag)`, the one parse.
 */
export function repeated(rawArgs: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length && rawArgs[i] !== '--'; i++) {
    const a = rawArgs[i] as string;
    if (a === `--${flag}`) out.push(rawArgs[++i] ?? '');
    else if (a.startsWith(`--${flag}=`)) out.push(a.slice(flag.length + 3));
  }
  return out;
}

/** All values of a repeatable flag (`repeatable: true`), in the order given. */
export function values(v: unknown): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/**
 * A flag may repeat when its table says `repeatable: true`, or (for tables written before
 * that field) its description says "repeatable": the help already promises it.
 */
function repeatable(def: ArgExtras & { description?: string }): boolean {
  return def.type !== 'boolean' && (def.repeatable === true || /\brepeatable\b/i.test(def.description ?? ''));
}

const NUMERIC = { integer: /^[0-9]+$/, number: /^[0-9]+(\.[0-9]+)?$/ } as const;

/**
 * Parses `rawArgs` against the verb's table. Throws UsageError with `details.reason` one of
 * unknown-flag, missing-value, bad-value, repeated-flag, unexpected-argument, missing-argument.
 */
export function parseStrict(argsDef: ArgsDef, rawArgs: readonly string[]): StrictArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  const shortOf = new Map<string, string>();
  // A long alias (`--peer-group` for `--group`) is the same flag: given with its other name it
  // is a repeat, not a second value the parse would silently drop.
  const aliasOf = new Map<string, string>();
  const positionals: [string, ArgExtras][] = [];
  for (const [name, raw] of Object.entries(argsDef)) {
    const def = raw as ArgExtras;
    if (def.type === 'positional') {
      positionals.push([name, def]);
      continue;
    }
    const o: (typeof options)[string] = { type: def.type === 'boolean' ? 'boolean' : 'string' };
    if (repeatable(def)) o.multiple = true;
    for (const a of aliases(def)) {
      if (a.length === 1) {
        o.short = a;
        shortOf.set(a, name);
      } else {
        options[a] = { ...o };
        aliasOf.set(a, name);
      }
    }
    options[name] = o;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...rawArgs],
      options,
      strict: true,
      allowPositionals: true,
      allowNegative: true,
      tokens: true,
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    const flag = flagIn(err.message, rawArgs);
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`Unknown flag ${flag ?? ''}`.trim(), 'unknown-flag', flag);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = (flag ?? '').replace(/^-+/, '');
      const def = (argsDef[name] ?? argsDef[shortOf.get(name) ?? '']) as ArgExtras | undefined;
      if (def?.type === 'boolean' || /does not take/.test(err.message)) {
        throw new UsageError(`${flag} takes no value`, 'bad-value', flag);
      }
      const dash = /ambiguous/.test(err.message) ? `; a value starting with - is written ${flag}=-…` : '';
      throw new UsageError(
        `${flag} needs a value (${flag} VALUE or ${flag}=VALUE)${dash}`,
        'missing-value',
        flag,
      );
    }
    throw new UsageError(err.message, 'bad-value', flag);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    const name = shortOf.get(t.name) ?? aliasOf.get(t.name) ?? t.name;
    const def = argsDef[name] as ArgExtras | undefined;
    if (def !== undefined && !repeatable(def) && seen.has(name)) {
      throw new UsageError(`--${name} given more than once`, 'repeated-flag', `--${name}`);
    }
    seen.add(name);
  }
  const out: StrictArgs = { _: [...parsed.positionals] };
  for (const [name, raw] of Object.entries(argsDef)) {
    const def = raw as ArgExtras;
    if (def.type === 'positional') continue;
    let v: unknown = parsed.values[name];
    for (const a of aliases(def)) {
      const w = a.length > 1 ? parsed.values[a] : undefined;
      if (w === undefined) continue;
      // A repeatable flag keeps every value, whichever of its names each was given by.
      v = v === undefined ? w : Array.isArray(v) && Array.isArray(w) ? [...v, ...w] : v;
    }
    if (v === undefined) v = def.default;
    const flag = `--${name}`;
    if (typeof v === 'string' && def.type !== 'boolean' && v === '' && !Object.hasOwn(def, 'default')) {
      throw new UsageError(`${flag} needs a non-empty value`, 'missing-value', flag);
    }
    for (const s of typeof v === 'string' ? [v] : Array.isArray(v) ? (v as string[]) : []) {
      if (def.type === 'enum' && def.options !== undefined && !def.options.includes(s)) {
        throw new UsageError(`${flag} ${s}: expected one of ${def.options.join(', ')}`, 'bad-value', flag);
      }
      if (def.numeric !== undefined && !NUMERIC[def.numeric].test(s)) {
        const what = def.numeric === 'integer' ? 'a whole number' : 'a number';
        throw new UsageError(`${flag} ${s}: expected ${what}`, 'bad-value', flag);
      }
    }
    if (def.required === true && v === undefined) {
      throw new UsageError(`Missing required flag ${flag}`, 'missing-argument', flag);
    }
    if (repeatable(def) && v === undefined) v = [];
    out[name] = v;
    out[camel(name)] = v;
  }
  const words = [...parsed.positionals];
  for (const [name, def] of positionals) {
    const w = words.shift();
    if (w === undefined && def.required !== false && def.default === undefined && def.variadic !== true) {
      throw new UsageError(`Missing argument ${name.toUpperCase()}`, 'missing-argument', name.toUpperCase());
    }
    out[name] = w ?? def.default;
    out[camel(name)] = out[name];
    if (def.variadic === true) words.length = 0;
  }
  const extra = words[0];
  if (extra !== undefined) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(extra)}`, 'unexpected-argument', extra);
  }
  return out;
}
