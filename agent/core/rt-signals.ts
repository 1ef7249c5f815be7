// Real-time signals for PID 1 (SIGRTMIN+3/4/5 = halt/poweroff/reboot, as systemd). Node's
// process.on() knows only the named signals, and the kernel drops signals PID 1 has no
// handler for, so the handler is installed through libuv's signal watcher, reachable with
// --expose-internals. `ensureInternals()` re-executes the agent with that flag (same pid,
// process.execve) before anything else runs.
import { createRequire } from 'node:module';
import { withCompileCache } from './compile-cache.ts';

/** glibc's SIGRTMIN (the kernel's 32 plus the two glibc keeps for threads). */
export const SIGRTMIN = 34;

const FLAG = '--expose-internals';

/**
 * V8 settings of the re-executed agent. PID 1 allocates little and its hot paths are native
 * (OpenSSL signatures and hashes, JSON), while memory it holds is memory no service can have:
 * a 1 MiB young generation instead of 16+ MiB, and V8's interpreter only — no Sparkplug,
 * Maglev or TurboFan code, whose compilers' pages and code space cost about 12 MiB RSS at
 * boot for no measurable boot time (doc/performance.md, agent). The price: JavaScript-heavy
 * work runs slower, e.g. a 128 MiB userspace verity check ~30 % (namespace mode only).
 */
export const AGENT_V8_FLAGS = ['--max-semi-space-size=1', '--no-sparkplug', '--no-maglev', '--no-opt'];

/** The Node flags the agent runs with: what the re-exec adds, and what CoreOS /sbin/init passes. */
export const AGENT_EXEC_ARGV = [FLAG, '--no-warnings', ...AGENT_V8_FLAGS];

/**
 * The re-executed agent's environment: the compile cache, and glibc's mmap threshold fixed
 * at its default 128 KiB. Left dynamic, glibc raises the threshold to the size of the first
 * large block freed, so the next ones (a layer check's 2 MiB read buffers) come from the
 * heap and stay resident once freed: measured 75–89 MiB at boot with it dynamic, 74.8–75.2
 * MiB fixed (12 runs each). A value the caller set is kept.
 */
export function agentEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out = withCompileCache(env);
  out.MALLOC_MMAP_THRESHOLD_ ??= String(128 * 1024);
  return out;
}

/**
 * Re-executes this process with --expose-internals unless it has it; returns only when it
 * has. The new process gets the compile cache (agent/core/compile-cache.ts) from its first module,
 * and the V8 and malloc settings above.
 */
export function ensureInternals(): void {
  if (process.execArgv.includes(FLAG) || process.execve === undefined) return;
  process.execve(
    process.execPath,
    [process.execPath, ...AGENT_EXEC_ARGV, ...process.execArgv, ...process.argv.slice(1)],
    agentEnv(process.env),
  );
}

interface SignalWrap {
  onsignal: (signum: number) => void;
  start(signum: number): number;
  close(): void;
  unref(): void;
}

/** Calls `handler` on `signum`; false when this Node cannot watch real-time signals. */
export function onRealtimeSignal(signum: number, handler: () => void): boolean {
  if (!process.execArgv.includes(FLAG)) return false;
  try {
    const require = createRequire(import.meta.url);
    const { internalBinding } = require('internal/test/binding') as {
      internalBinding: (name: string) => { Signal: new () => SignalWrap };
    };
    const { Signal } = internalBinding('signal_wrap');
    const s = new Signal();
    s.onsignal = () => handler();
    if (s.start(signum) !== 0) return false;
    s.unref();
    return true;
  } catch {
    return false;
  }
}
