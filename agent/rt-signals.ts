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
 * Re-executes this process with --expose-internals unless it has it; returns only when it
 * has. The new process gets the compile cache (agent/compile-cache.ts) from its first module.
 */
export function ensureInternals(): void {
  if (process.execArgv.includes(FLAG) || process.execve === undefined) return;
  process.execve(
    process.execPath,
    // A 1 MiB young generation instead of the default 16+ MiB: PID 1 allocates little, and
    // memory it holds is memory no service can have.
    [
      process.execPath,
      FLAG,
      '--no-warnings',
      '--max-semi-space-size=1',
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    withCompileCache(process.env),
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
