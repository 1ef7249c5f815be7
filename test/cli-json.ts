// Reading our binaries' --json output in tests (doc/cli.md, "Output"): every document, and every
// line of a streaming verb, is an envelope, `{ok: true, result}` or `{ok: false, error}`.
// `checkJsonOutput` (run by helpers.ts `cli()` on every --json run of every test) checks each
// envelope against the verb's result schema (<part>/cli/results.ts) or the failure schema;
// `jsonOut` / `jsonLinesOut` give a test the results.
import { type AnyCommand, verbPath } from '../common/cli.ts';
import { cliFailureFormat } from '../common/cli-failure.ts';
import { envelopeOf } from '../common/cli-result.ts';
import { check } from '../common/schema.ts';

/** The envelopes in `stdout`: one document, or one a line (a streaming verb). */
export function envelopes(stdout: string): unknown[] {
  try {
    return [JSON.parse(stdout)];
  } catch {
    return stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l);
        } catch {
          throw new Error(`--json output line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
        }
      });
  }
}

function unwrap(e: unknown): unknown {
  const o = e as { ok?: unknown; result?: unknown };
  if (o === null || typeof o !== 'object' || (o.ok !== true && o.ok !== false))
    throw new Error(
      `not a --json envelope ({ok, result} or {ok: false, error}): ${JSON.stringify(e)?.slice(0, 300)}`,
    );
  // A failure is returned whole, so a test reads `.ok === false` and `.error.code` from it.
  return o.ok === true ? o.result : e;
}

/**
 * What a --json run printed: the verb's `result`, or the failure body `{ok: false, error}` as
 * printed. One document; see jsonLinesOut for a streaming verb.
 */
// biome-ignore lint/suspicious/noExplicitAny: a test states the shape it expects with a cast
export function jsonOut(stdout: string): any {
  return unwrap(JSON.parse(stdout));
}

/** A streaming verb's lines (a fleet command, `ctl watch`): each line's result (or failure body). */
// biome-ignore lint/suspicious/noExplicitAny: a test states the shape it expects with a cast
export function jsonLinesOut(stdout: string): any[] {
  return envelopes(stdout).map(unwrap);
}

const ROOTS: Record<string, () => Promise<AnyCommand>> = {
  mway: () => import('../control/operator/bin/mway.ts').then((m) => m.command),
  milkywaysrvd: () => import('../control/broker/bin/milkywaysrvd.ts').then((m) => m.command),
  'mway-layer': () => import('../layers/bin/mway-layer.ts').then((m) => m.command),
  'mway-image': () => import('../imagebuild/bin/mway-image.ts').then((m) => m.command),
  'milkyway-agent': () => import('../agent/bin/milkyway-agent.ts').then((m) => m.command),
};

/** The verb `argv` of `bin` runs, as its results table names it (`mway group add`). */
export async function verbOf(bin: string, argv: readonly string[]): Promise<string> {
  const load = ROOTS[bin];
  if (load === undefined) throw new Error(`unknown binary ${bin}`);
  let words = [...argv];
  if (bin === 'mway') words = (await import('../control/operator/bin/mway.ts')).moduleVerbArgv(words);
  return (await verbPath(await load(), words)).join(' ');
}

/**
 * Checks what `bin argv` printed on stdout with --json: every envelope is the failure shape or
 * `{ok: true, result}` with the verb's result schema. Throws, naming the verb and the key path.
 */
export async function checkJsonOutput(bin: string, argv: readonly string[], stdout: string): Promise<void> {
  const dash = argv.indexOf('--');
  const flags = dash < 0 ? argv : argv.slice(0, dash);
  if (!flags.includes('--json') || flags.includes('--help') || flags.includes('-h')) return;
  if (stdout.trim() === '') return;
  const verb = await verbOf(bin, argv);
  const { VERB_RESULTS } = await import('../scripts/cli-results.ts');
  const table = VERB_RESULTS[bin] ?? {};
  if (!Object.hasOwn(table, verb))
    throw new Error(`${verb} has no result schema in its part's cli/results.ts`);
  const schema = table[verb];
  const all = envelopes(stdout);
  for (const [i, e] of all.entries()) {
    const where = all.length > 1 ? ` (line ${i + 1})` : '';
    if ((e as { ok?: unknown }).ok === false) {
      cliFailureFormat.parse(e);
      continue;
    }
    if (schema === null || schema === undefined)
      throw new Error(`${verb} printed a result but has no schema`);
    const r = check(envelopeOf(schema), e);
    if (!r.ok)
      throw new Error(
        `${verb} --json${where} is not its result schema: ${r.issue.keyPath}: ${r.issue.problem}`,
      );
  }
}
