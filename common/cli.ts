// Shared CLI plumbing for every MilkyWay binary (citty underneath): help handling,
// one-line error reports with stable codes, `--json` error output, `--debug` stacks,
// and the exit code. Only `main()` calls process.exit, so tests can run commands.
import { type CommandDef, renderUsage, runCommand } from 'citty';
import { isMilkyWayError } from './error.ts';

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
type AnyCommand = CommandDef<any>;

async function resolve<T>(
  v: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined,
): Promise<T | undefined> {
  return typeof v === 'function' ? await (v as () => T | Promise<T>)() : await v;
}

/** Walks argv down the subcommand tree to the command `--help` is asked for. */
async function commandFor(
  root: AnyCommand,
  argv: readonly string[],
): Promise<[AnyCommand, AnyCommand | undefined]> {
  let cmd = root;
  let parent: AnyCommand | undefined;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const subs = await resolve(cmd.subCommands);
    const next = subs?.[arg];
    if (next === undefined) break;
    parent = cmd;
    cmd = (await resolve(next)) as AnyCommand;
  }
  return [cmd, parent];
}

/** The command argv selects and the arguments left for it. */
async function leafFor(root: AnyCommand, argv: readonly string[]): Promise<[AnyCommand, readonly string[]]> {
  let cmd = root;
  let rest = argv;
  for (;;) {
    const subs = await resolve(cmd.subCommands);
    if (subs === undefined || Object.keys(subs).length === 0) return [cmd, rest];
    const i = rest.findIndex((a) => !a.startsWith('-'));
    const name = i < 0 ? undefined : rest[i];
    const next = name === undefined ? undefined : subs[name];
    if (next === undefined) {
      if (cmd.run !== undefined) return [cmd, rest];
      const what = name === undefined ? 'No command specified' : `Unknown command ${name}`;
      throw Object.assign(new Error(what), { name: 'CLIError', code: 'E_USAGE' });
    }
    cmd = (await resolve(next)) as AnyCommand;
    rest = [...rest.slice(0, i), ...rest.slice(i + 1)];
  }
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

/**
 * Runs `root` with `argv` and returns the exit code. A command's `run` may return a
 * number (its exit code); anything else means success.
 */
export async function runCli(
  root: AnyCommand,
  argv: readonly string[],
  io: CliIo = processIo,
): Promise<number> {
  const name = (await resolve(root.meta))?.name ?? 'mway';
  const json = argv.includes('--json');
  const debug = argv.includes('--debug') || process.env.MWAY_DEBUG === '1';
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    const [cmd, parent] = await commandFor(root, argv);
    io.out(`${await renderUsage(cmd, parent)}\n`);
    return argv.length === 0 && root.run === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    io.out(`${(await resolve(root.meta))?.version ?? '0.0.0'}\n`);
    return EXIT_OK;
  }
  try {
    // Descend to the leaf ourselves: citty drops a subcommand's return value, and the
    // leaf's result is the exit code.
    const [leaf, rest] = await leafFor(root, argv);
    const { result } = await runCommand(leaf, { rawArgs: [...rest] });
    return typeof result === 'number' ? result : EXIT_OK;
  } catch (e) {
    return reportError(name, e, { json, debug, io, root, argv });
  }
}

interface ReportContext {
  json: boolean;
  debug: boolean;
  io: CliIo;
  root: AnyCommand;
  argv: readonly string[];
}

async function reportError(name: string, e: unknown, ctx: ReportContext): Promise<number> {
  const { io } = ctx;
  const citty = e instanceof Error && e.name === 'CLIError';
  const ours = isMilkyWayError(e);
  const code = ours ? e.code : citty ? ((e as Error & { code?: string }).code ?? 'E_USAGE') : 'E_INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  const exit = ours ? e.exitCode : citty ? EXIT_USAGE : EXIT_INTERNAL;
  if (ctx.json) {
    const body = ours ? e.toJSON() : { code, message };
    io.out(`${JSON.stringify({ ok: false, error: body })}\n`);
  } else {
    const where = ours && e.path !== undefined && !message.includes(e.path) ? ` (${e.path})` : '';
    io.err(`${name}: ${code}: ${message}${where}\n`);
    if (citty) {
      const [cmd, parent] = await commandFor(ctx.root, ctx.argv);
      io.err(`\n${await renderUsage(cmd, parent)}\n`);
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

/** Prints `value` as JSON when `json` is set, otherwise the human text. */
export function output(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json === true) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else {
    const text = human();
    if (text !== '') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Splits a comma-separated flag value into trimmed non-empty items. */
export function list(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** All values of a repeatable `--flag` in argv (citty keeps only the last one). */
export function repeated(argv: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${flag}`) {
      const v = argv[i + 1];
      if (v !== undefined) out.push(v);
      i++;
    } else if (a?.startsWith(`--${flag}=`)) out.push(a.slice(flag.length + 3));
  }
  return out;
}

/**
 * Refuses flags a command does not declare (citty parses leniently): a check that silently
 * does not run is a defect in a security tool. Throws citty's usage error (exit 2, usage
 * block). Values after `--` are not flags.
 */
export function refuseUnknownFlags(
  args: Record<string, { type?: string; alias?: string | string[] }>,
  rawArgs: readonly string[],
): void {
  const known = new Set<string>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === 'positional') continue;
    known.add(name);
    if (def.type === 'boolean') known.add(`no-${name}`);
    for (const a of typeof def.alias === 'string' ? [def.alias] : (def.alias ?? [])) known.add(a);
  }
  for (const a of rawArgs) {
    if (a === '--') return;
    if (!a.startsWith('-') || a === '-') continue;
    const name = a.replace(/^--?/, '').split('=')[0] ?? '';
    if (!known.has(name)) {
      throw Object.assign(new Error(`Unknown flag ${a.split('=')[0]}`), {
        name: 'CLIError',
        code: 'E_USAGE',
      });
    }
  }
}
