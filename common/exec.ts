// The one way MilkyWay runs external programs: execa with an explicit timeout, a
// force-kill after SIGTERM, never a shell, and a missing program reported with the
// Debian package that provides it. execa (110 modules) is imported on the first run, not
// when this file loads: every CLI loads common/, and `--help` runs no program.
import type { Options } from 'execa';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { CommonError } from './error.ts';
import { debianPackageOf } from './tools.ts';

export class ToolError extends CommonError {}

export interface RunOptions {
  /** Milliseconds before SIGTERM; required so nothing can hang forever. */
  timeout: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string | Uint8Array;
  /** Return stdout as bytes instead of text. */
  binary?: boolean;
  /** Do not throw on a non-zero exit; the caller inspects `exitCode`. */
  reject?: boolean;
  /**
   * Most bytes (with `binary`; characters otherwise) on stdout or stderr: more and the program
   * is killed and E_TOOL_OUTPUT_LIMIT thrown, so a chatty program cannot fill the caller's memory.
   */
  maxBuffer?: number;
  /** Inherit stdio (e.g. QEMU's serial console). */
  inherit?: boolean;
  extendEnv?: boolean;
  /**
   * Called as soon as the program is started (or its start failed), before its exit is
   * awaited: a caller with CPU work of its own does it while the program runs, not before.
   */
  onSpawn?: () => void;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array | undefined;
}

/** The fields of execa's result we read (its own types fight exactOptionalPropertyTypes). */
export interface ExecaOutcome {
  stdout: unknown;
  stderr: unknown;
  exitCode?: number | undefined;
  signal?: string | undefined;
  timedOut: boolean;
  isMaxBuffer?: boolean;
}

const SEARCH_EXTRA = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of `tool` on PATH (plus the sbin directories), or undefined. */
export async function findTool(tool: string): Promise<string | undefined> {
  if (tool.includes('/')) {
    try {
      await access(tool, constants.X_OK);
      return tool;
    } catch {
      return undefined;
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SEARCH_EXTRA];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, tool);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Throws E_TOOL_MISSING naming the Debian package when `tool` is not installed. */
export async function requireTool(tool: string): Promise<string> {
  const found = await findTool(tool);
  if (found !== undefined) return found;
  const pkg = debianPackageOf(tool);
  const hint = pkg === undefined ? '' : `: install the Debian package ${pkg} (apt-get install ${pkg})`;
  throw new ToolError('E_TOOL_MISSING', `Cannot run ${tool}: not found on PATH${hint}`, {
    path: tool,
    details: pkg === undefined ? {} : { debianPackage: pkg },
  });
}

/** Runs `tool args…` and returns its output; throws ToolError on failure or timeout. */
export async function run(tool: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const file = await requireTool(tool);
  const execaOptions: Options = {
    timeout: options.timeout,
    forceKillAfterDelay: 5_000,
    reject: false,
    stripFinalNewline: false,
    extendEnv: options.extendEnv ?? true,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer }),
    ...(options.binary === true ? { encoding: 'buffer' as const } : {}),
    ...(options.inherit === true ? { stdio: 'inherit' as const } : {}),
  };
  const { execa } = await import('execa');
  let result: ExecaOutcome;
  try {
    const subprocess = execa(file, [...args], execaOptions);
    options.onSpawn?.();
    result = (await subprocess) as unknown as ExecaOutcome;
  } catch (e) {
    throw new ToolError('E_TOOL_FAILED', `Cannot run ${tool}: ${String(e)}`, { cause: e, path: tool });
  }
  const stdoutRaw: unknown = result.stdout;
  const stdoutBytes = stdoutRaw instanceof Uint8Array ? stdoutRaw : undefined;
  const stdout = typeof stdoutRaw === 'string' ? stdoutRaw : '';
  const stderrRaw: unknown = result.stderr;
  const stderr =
    typeof stderrRaw === 'string'
      ? stderrRaw
      : stderrRaw instanceof Uint8Array
        ? Buffer.from(stderrRaw).toString('utf8')
        : '';
  if (result.timedOut) {
    throw new ToolError('E_TOOL_TIMEOUT', `${tool} did not finish within ${options.timeout} ms`, {
      path: tool,
      details: { args: [...args] },
    });
  }
  if (result.isMaxBuffer === true) {
    throw new ToolError(
      'E_TOOL_OUTPUT_LIMIT',
      `${tool} printed more than ${options.maxBuffer} ${options.binary === true ? 'bytes' : 'characters'} and was killed`,
      { path: tool, details: { args: [...args], maxBuffer: options.maxBuffer } },
    );
  }
  const exitCode = result.exitCode ?? (result.signal === undefined ? 1 : 128);
  if (exitCode !== 0 && options.reject !== false) {
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    throw new ToolError('E_TOOL_FAILED', `${tool} exited with ${result.signal ?? exitCode}: ${tail}`, {
      path: tool,
      details: { args: [...args], exitCode, stderr: stderr.slice(-4000) },
    });
  }
  return { exitCode, stdout, stderr, stdoutBytes };
}
