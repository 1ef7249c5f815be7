// Shared CLI plumbing for every MilkyWay binary (citty underneath): help handling,
// one-line error reports with stable codes, `--json` error output, `--debug` stacks,
// and the exit code. Only `main()` calls process.exit, so tests can run commands.
import { stripVTControlCharacters } from 'node:util';
import { type ArgsDef, type CommandDef, renderUsage } from 'citty';
import { parseStrict, passesArgv } from './cli-args.ts';
import { isMilkyWayError, type MilkyWayError } from './error.ts';
import { isUsageError, UsageError } from './usage-error.ts';

/** Exit codes shared by every binary (documented in doc/cli.md). */
export const EXIT_OK = 0;
/** The thing checked is invalid (verification failed, a peer failed, …). */
export const EXIT_FAIL = 1;
/** Usage error: unknown flag, missing argument. */
export const EXIT_USAGE = 2;
/** Internal error: a bug; the message asks for --debug. */
export const EXIT_INTERNAL = 70;

/** Common flags every command accepts. */
export const commonArgs = {
  json: { type: 'boolean', description: 'Print machine-readable JSON on stdout' },
  debug: { type: 'boolean', description: 'Show stack traces on errors' },
} as const;

// biome-ignore lint/suspicious/noExplicitAny: citty's CommandDef is invariant in its args type
export type AnyCommand = CommandDef<any>;

async function resolve<T>(
  v: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined,
): Promise<T | undefined> {
  return typeof v === 'function' ? await (v as () => T | Promise<T>)() : await v;
}

const loaders = new WeakMap<object, () => Promise<AnyCommand>>();

/**
 * A subcommand whose module is imported only when it runs or its own help is shown. Its
 * description is written here, in the parent's table, because the parent's `--help` lists
 * every subcommand and must not import them all to do so (citty's usage reads only a
 * subcommand's meta; before this, `mway-layer --help` loaded 567 modules). The verb's file
 * carries no meta of its own: the name is its key in the table, the description this one.
 */
export function lazy(description: string, load: () => Promise<AnyCommand>): AnyCommand {
  const stub: AnyCommand = { meta: { description } };
  loaders.set(stub, load);
  return stub;
}

/** The command a subcommand table entry named `name` stands for, a lazy one's module loaded. */
export async function loadCommand(entry: unknown, name: string): Promise<AnyCommand> {
  const c = (await resolve(entry as AnyCommand)) as AnyCommand;
  const load = loaders.get(c);
  if (load === undefined) return c;
  const real = await load();
  return { ...real, meta: { ...((await resolve(real.meta)) ?? {}), name, ...(c.meta as object) } };
}

/** The words before `--`: only they can be flags or subcommand names. */
function beforeDash(argv: readonly string[]): readonly string[] {
  const i = argv.indexOf('--');
  return i < 0 ? argv : argv.slice(0, i);
}

interface Selected {
  cmd: AnyCommand;
  parent: AnyCommand | undefined;
  /** argv without the subcommand names. */
  rest: readonly string[];
  /** The names walked, root first (`['mway', 'group', 'add']`). */
  names: string[];
  /** The root's version, for the usage line of a verb at any depth. */
  version?: string | undefined;
}

/** Whether `flag` (`--x`, `-x`) takes a value in `cmd`'s table (so the next word is not a verb). */
async function takesValue(cmd: AnyCommand, flag: string): Promise<boolean> {
  if (flag.includes('=') || !flag.startsWith('-')) return false;
  const name = flag.replace(/^--?/, '');
  const args = ((await resolve(cmd.args)) ?? {}) as Record<
    string,
    { type?: string; alias?: string | string[] }
  >;
  for (const [k, d] of Object.entries(args)) {
    const as = typeof d.alias === 'string' ? [d.alias] : (d.alias ?? []);
    if ((k === name || as.includes(name)) && d.type !== 'boolean' && d.type !== 'positional') return true;
  }
  return false;
}

/**
 * Walks argv down the subcommand tree: the first word (not a flag, not a flag's value, not
 * after `--`) names the subcommand. With `lenient` (for --help) an unknown word stops the walk;
 * otherwise it is an unknown-command usage error where the command has no run of its own.
 */
async function select(root: AnyCommand, argv: readonly string[], lenient: boolean): Promise<Selected> {
  let cmd = root;
  let parent: AnyCommand | undefined;
  let rest = argv;
  const names = [(await resolve(root.meta))?.name ?? 'mway'];
  for (;;) {
    const subs = await resolve(cmd.subCommands);
    if (subs === undefined || Object.keys(subs).length === 0) break;
    const words = beforeDash(rest);
    let i = 0;
    for (; i < words.length; i++) {
      const w = words[i] as string;
      if (!w.startsWith('-')) break;
      if (await takesValue(cmd, w)) i++;
    }
    const name = i < words.length ? words[i] : undefined;
    const next = name === undefined || !Object.hasOwn(subs, name) ? undefined : subs[name];
    if (next === undefined) {
      if (lenient || name === undefined) break;
      if (cmd.run !== undefined) {
        const own = Object.values(((await resolve(cmd.args)) ?? {}) as Record<string, { type?: string }>);
        if (own.some((d) => d.type === 'positional')) break;
      }
      const known = Object.keys(subs).join(', ');
      throw name === undefined
        ? new UsageError(`No command given; one of: ${known}`, 'unknown-command')
        : new UsageError(`Unknown command ${name}; one of: ${known}`, 'unknown-command', name);
    }
    parent = cmd;
    cmd = await loadCommand(next, name as string);
    names.push(name as string);
    rest = [...rest.slice(0, i), ...rest.slice(i + 1)];
  }
  return { cmd, parent, rest, names, version: (await resolve(root.meta))?.version };
}

/** The names of the verb `argv` runs, root first (`['mway', 'group', 'add']`): whose result schema applies. */
export async function verbPath(root: AnyCommand, argv: readonly string[]): Promise<string[]> {
  return (await select(root, argv, true)).names;
}

/** Whether help and messages may carry ANSI colour: a terminal, and NO_COLOR unset. */
export function colourAllowed(stream: { isTTY?: boolean } = process.stdout): boolean {
  const env = process.env;
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
}

/** The usage block of `sel`'s verb: citty's rendering, `--` shown where argv is passed on. */
export async function helpText(sel: Selected, colour: boolean): Promise<string> {
  // citty names a verb after its parent alone (`spec validate`, no version): give it the whole
  // path and the binary's version, as a nested verb is typed (`mway-image spec validate`).
  const parent =
    sel.parent === undefined
      ? undefined
      : {
          meta: {
            ...((await resolve(sel.parent.meta)) ?? {}),
            name: sel.names.slice(0, -1).join(' '),
            ...(sel.version === undefined ? {} : { version: sel.version }),
          },
        };
  let text = await renderUsage(sel.cmd, parent);
  const args = ((await resolve(sel.cmd.args)) ?? {}) as ArgsDef;
  // citty prints every alias with one dash; a long one (`--peer-group` for `--group`) is typed
  // with two, so show it so (the column is right-aligned: the space before it takes the dash).
  for (const d of Object.values(args) as Array<{ alias?: string | string[] }>) {
    for (const a of typeof d.alias === 'string' ? [d.alias] : (d.alias ?? [])) {
      if (a.length < 2) continue;
      const esc = a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      text = text.replace(new RegExp(`(^| ?)-${esc}, `, 'gm'), (_m, pre: string) =>
        pre === ' ' ? `--${a}, ` : `${pre}--${a}, `,
      );
    }
  }
  if (passesArgv(args)) {
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.includes('USAGE'));
    if (at >= 0) lines[at] = `${lines[at]} [-- ARG…]`;
    text = lines.join('\n');
    text += '\n\nEverything after -- is passed on verbatim, flags included.';
  }
  return colour ? text : stripVTControlCharacters(text);
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether the out stream may get colour (a TTY without NO_COLOR); default: process.stdout's. */
  colour?: boolean;
}

const processIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

/**
 * Runs `root` with `argv` and returns the exit code. A command's `run` may return a
 * number (its exit code); anything else means success. The verb's arguments are parsed
 * strictly (common/cli-args.ts) and that parse is the `args` its `run` gets.
 */
let active: AnyCommand | undefined;

/** The root command runCli is running (for `completion`, which describes its own binary). */
export function activeRoot(): AnyCommand | undefined {
  return active;
}

export async function runCli(
  root: AnyCommand,
  argv: readonly string[],
  io: CliIo = processIo,
): Promise<number> {
  active = root;
  const name = (await resolve(root.meta))?.name ?? 'mway';
  const flags = beforeDash(argv);
  const json = flags.includes('--json');
  const debug = flags.includes('--debug') || process.env.MWAY_DEBUG === '1';
  const colour = io.colour ?? (io === processIo && colourAllowed());
  if (flags.includes('--help') || flags.includes('-h') || argv.length === 0) {
    const sel = await select(root, argv, true);
    io.out(`${await helpText(sel, colour)}\n`);
    return argv.length === 0 && root.run === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    io.out(`${(await resolve(root.meta))?.version ?? '0.0.0'}\n`);
    return EXIT_OK;
  }
  let sel: Selected | undefined;
  try {
    sel = await select(root, argv, false);
    const argsDef = ((await resolve(sel.cmd.args)) ?? {}) as ArgsDef;
    const args = parseStrict(argsDef, sel.rest);
    if (sel.cmd.run === undefined) {
      const subs = Object.keys((await resolve(sel.cmd.subCommands)) ?? {}).join(', ');
      throw new UsageError(`No command given; one of: ${subs}`, 'unknown-command');
    }
    const ctx = { rawArgs: [...sel.rest], args, cmd: sel.cmd };
    // citty's runCommand is not used: it would parse argv again, leniently.
    let result: unknown;
    try {
      if (sel.cmd.setup !== undefined) await sel.cmd.setup(ctx as never);
      result = await sel.cmd.run(ctx as never);
    } finally {
      if (sel.cmd.cleanup !== undefined) await sel.cmd.cleanup(ctx as never);
    }
    return typeof result === 'number' ? result : EXIT_OK;
  } catch (e) {
    return reportError(name, e, { json, debug, io, root, argv, sel, colour });
  }
}

interface ReportContext {
  json: boolean;
  debug: boolean;
  io: CliIo;
  root: AnyCommand;
  argv: readonly string[];
  sel: Selected | undefined;
  colour: boolean;
}

/** The one failure shape of `--json` (doc/cli.md): `{ok: false, error: {code, message, path?, details?}}`. */
export function failureBody(e: unknown): { ok: false; error: Record<string, unknown> } {
  if (isMilkyWayError(e)) return { ok: false, error: e.toJSON() };
  const citty = e instanceof Error && e.name === 'CLIError';
  const message = e instanceof Error ? e.message : String(e);
  return {
    ok: false,
    error: { code: citty ? 'E_USAGE' : 'E_INTERNAL', message: stripVTControlCharacters(message) },
  };
}

async function reportError(name: string, e: unknown, ctx: ReportContext): Promise<number> {
  const { io } = ctx;
  const citty = e instanceof Error && e.name === 'CLIError';
  const ours = isMilkyWayError(e);
  const usage = citty || isUsageError(e);
  const body = failureBody(e);
  const code = String(body.error.code);
  const message = String(body.error.message);
  const exit = ours ? e.exitCode : citty ? EXIT_USAGE : EXIT_INTERNAL;
  if (ctx.json) {
    io.out(`${JSON.stringify(body)}\n`);
  } else {
    const where = ours && e.path !== undefined && !message.includes(e.path) ? ` (${e.path})` : '';
    io.err(`${name}: ${code}: ${message}${where}\n`);
    if (usage) {
      const sel = ctx.sel ?? (await select(ctx.root, ctx.argv, true));
      io.err(`\n${await helpText(sel, false)}\n`);
    } else if (!ours && !ctx.debug) {
      io.err(`${name}: this is a bug; run again with --debug for the stack trace\n`);
    }
  }
  if (ctx.debug && e instanceof Error && e.stack !== undefined) io.err(`${e.stack}\n`);
  return exit;
}

/** Entry point for bin/ files: runs and exits with the command's code. */
export async function main(root: AnyCommand): Promise<void> {
  const code = await runCli(root, process.argv.slice(2));
  // Let stdout drain before exiting (pipes are asynchronous in Node).
  process.exitCode = code;
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  process.exit(code);
}

/**
 * The one success shape of `--json` (doc/cli.md, "Output"): `{ok: true, result}`, the verb's
 * result (its schema: doc/cli-result.schema.json) under `result`, as a failure's is under `error`.
 */
export function successBody(result: unknown): { ok: true; result: unknown } {
  return { ok: true, result };
}

/** Prints `value` as the `--json` success envelope when `json` is set, otherwise the human text. */
export function output(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json === true) process.stdout.write(`${JSON.stringify(successBody(value), null, 2)}\n`);
  else printHuman(human());
}

function printHuman(text: string): void {
  if (text !== '') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * One line of a streaming verb's `--json` (a fleet command's results as they arrive, `ctl
 * watch`'s signals): the same envelope as `output`, on one line, so a reader parses each line
 * as it would a whole document.
 */
export function jsonLine(value: unknown, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  write(`${JSON.stringify(successBody(value))}\n`);
}

/** What a failed check reports: an error of ours, or its code and message with what it found. */
export interface Failure {
  code: string;
  message: string;
  path?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

/**
 * Reports a check that failed (a verify verb's finding, not a crash): with --json the one
 * failure shape on stdout, `{ok: false, error: {code, message, path?, details?}}` (doc/cli.md);
 * otherwise `human` (default `CODE: message`). Returns the exit code: the error's, else 1.
 */
export function failed(json: boolean | undefined, e: MilkyWayError | Failure, human?: () => string): number {
  const error = isMilkyWayError(e)
    ? e.toJSON()
    : {
        code: e.code,
        message: e.message,
        ...(e.path === undefined ? {} : { path: e.path }),
        ...(e.details === undefined ? {} : { details: e.details }),
      };
  if (json === true) process.stdout.write(`${JSON.stringify({ ok: false, error }, null, 2)}\n`);
  else printHuman(human === undefined ? `${e.code}: ${e.message}` : human());
  return isMilkyWayError(e) ? e.exitCode : EXIT_FAIL;
}

/** Splits a comma-separated flag value into trimmed non-empty items. */
export function list(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
