// The one success shape every MilkyWay binary prints with --json (doc/cli.md, "Output"):
// `{ok: true, result}`, next to the failure shape `{ok: false, error}` (cli-failure.ts). What
// `result` holds is the verb's: each part keeps a table of its verbs' result schemas next to
// the verbs (`<part>/cli/results.ts`), and `npm run schemas` publishes them all, one `$defs`
// entry a verb, in doc/cli-result.schema.json. The tests' CLI helper checks every `--json`
// output of every test against the verb's entry, so a table cannot drift from its verb.
import { defineFormat, object, openObject, type Schema, v } from './schema.ts';

/**
 * A part's verbs and the schema of the `result` each prints, keyed by the verb's path as it is
 * typed (`mway group add`). `null`: the verb prints no JSON document (`completion` prints a
 * script, `milkyway-agent run` logs). A streaming verb's schema covers every line's result.
 */
export type VerbResults = Readonly<Record<string, Schema | null>>;

/** The `$defs` key of a verb's result: its path with dots (`mway.group.add`). */
export function resultKey(path: string): string {
  return path.split(' ').join('.');
}

/** The success envelope around `result`. */
export function envelopeOf(result: Schema) {
  return object({ ok: v.literal(true), result });
}

/** The published envelope: `result` left open here, each verb's `$defs` entry says what it is. */
export function cliResultFormat(
  tables: readonly VerbResults[],
  /** Shapes several verbs print (`fleet-job`), named once: those verbs' entries refer to them. */
  shared: Readonly<Record<string, Schema>> = {},
) {
  const definitions: Record<string, Schema> = {};
  for (const t of tables)
    for (const [path, s] of Object.entries(t)) if (s !== null) definitions[resultKey(path)] = s;
  // Last: where one schema has several names, the converter refers to the last one.
  Object.assign(definitions, shared);
  return defineFormat({
    name: 'cli-result',
    title:
      'The --json success shape of every MilkyWay command (doc/cli.md): {ok: true, result}; $defs has each verb’s result by its path (mway.group.add)',
    schema: envelopeOf(v.unknown()),
    definitions,
    error: (issue) => new TypeError(`Not the --json success shape: ${issue.keyPath}: ${issue.problem}`),
  });
}

// Small shapes the tables share.
export const str = v.string();
export const num = v.number();
export const bool = v.boolean();
export const any = v.unknown();
export const opt = <S extends Schema>(s: S) => v.exactOptional(s);
/** An object with these keys (more allowed: a result may grow a field without breaking a reader). */
export const shape = openObject;
/** A list of `item`. */
export const rows = <S extends Schema>(item: S) => v.array(item);
