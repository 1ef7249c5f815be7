// Test helpers shared by every part's tests: temporary directories that clean up,
// and running our CLIs the way a user does (a child process on Node 24).

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

export { jsonLinesOut, jsonOut } from './cli-json.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export const BINS = {
  mway: join(ROOT, 'control/operator/bin/mway.ts'),
  milkywaysrvd: join(ROOT, 'control/broker/bin/milkywaysrvd.ts'),
  'mway-layer': join(ROOT, 'layers/bin/mway-layer.ts'),
  'mway-image': join(ROOT, 'imagebuild/bin/mway-image.ts'),
  'milkyway-agent': join(ROOT, 'agent/bin/milkyway-agent.ts'),
} as const;

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts next. It is
 * drawn at random from 20000-32767, below the kernel's ephemeral range (32768-60999): a port 0
 * pick is in that range, where any outgoing connection of a parallel test may take it before
 * the server binds it (a NATS leaf port once did, in CI). A port is never handed out twice by
 * one process.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port in 20000-32767 after 200 tries');
}

const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A fresh temporary directory removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'mway-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Retries: a worker of the code under test (the broker's WAL checkpointer) may still be
  // writing into the directory for a moment after the test ends (ENOTEMPTY).
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  return dir;
}

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one of our binaries with `args` under the same Node as the tests. */
export async function cli(
  bin: keyof typeof BINS,
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string; timeout?: number } = {},
): Promise<CliRun> {
  const r = await execa(process.execPath, [BINS[bin], ...args], {
    reject: false,
    timeout: options.timeout ?? 120_000,
    env: { ...options.env, NO_COLOR: '1' },
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const run = { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
  // Every --json output of every test is checked against its verb's result schema (or the
  // failure shape): a verb cannot print what doc/cli-result.schema.json does not say.
  if (r.signal === undefined && !r.timedOut) {
    const { checkJsonOutput } = await import('./cli-json.ts');
    try {
      await checkJsonOutput(bin, args, run.stdout);
    } catch (e) {
      throw new Error(`${bin} ${args.join(' ')}: ${(e as Error).message}\n${run.stdout.slice(0, 2000)}`);
    }
  }
  return run;
}

/**
 * Polls `f` every 100 ms until it holds; throws naming `what` after `ms`. Fleet tests wait on
 * links, deliveries and peers this way, with one generous default for a loaded machine.
 */
export async function until(what: string, f: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
