// Process-level duties of PID 1: signal handlers (the kernel delivers to PID 1 only the
// signals it handles), uncaught errors into the orderly emergency path instead of an exit,
// and the final act: busybox `poweroff -f` / `reboot -f` / `halt -f` on a real system, or
// exiting with a status in namespace mode. A real PID 1 never returns from here.
import { readFileSync } from 'node:fs';
import { run } from '../../common/index.ts';
import type { Agent, PowerAction, ShutdownResult } from './agent.ts';
import { onRealtimeSignal, SIGRTMIN } from './rt-signals.ts';

/** A real PID 1 runs in the initial PID namespace, where pid 2 is the kernel's kthreadd. */
export function isRealPid1(): boolean {
  if (process.pid !== 1) return false;
  try {
    return readFileSync('/proc/2/comm', 'utf8').trim() === 'kthreadd';
  } catch {
    return false;
  }
}

/** systemd's map: SIGTERM/SIGPWR → poweroff, SIGINT (Ctrl-Alt-Del) → reboot, SIGRTMIN+3/4/5 → halt/poweroff/reboot. */
export function installSignalHandlers(agent: Agent): { missing: string[] } {
  const named: [NodeJS.Signals, PowerAction][] = [
    ['SIGTERM', 'poweroff'],
    ['SIGPWR', 'poweroff'],
    ['SIGINT', 'reboot'],
  ];
  for (const [sig, action] of named) process.on(sig, () => void agent.shutdown(action, `${sig} received`));
  process.on('SIGHUP', () => void agent.reload());
  // A closed console must not kill PID 1.
  process.on('SIGPIPE', () => {});
  const missing: string[] = [];
  const rt: [number, PowerAction][] = [
    [3, 'halt'],
    [4, 'poweroff'],
    [5, 'reboot'],
  ];
  for (const [n, action] of rt) {
    if (!onRealtimeSignal(SIGRTMIN + n, () => void agent.shutdown(action, `SIGRTMIN+${n} received`))) {
      missing.push(`SIGRTMIN+${n}`);
    }
  }
  if (missing.length > 0) agent.warn(`cannot watch ${missing.join(', ')} (Node without --expose-internals)`);
  return { missing };
}

/** Uncaught exceptions and unhandled rejections start the emergency path: stop, sync, reboot. */
export function installEmergencyPath(agent: Agent): void {
  const emergency = (what: string, e: unknown) => {
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    agent.log('error', `${what}: ${message}`);
    void agent.shutdown('reboot', `emergency after ${what}`, true);
  };
  process.on('uncaughtException', (e) => emergency('uncaught exception', e));
  process.on('unhandledRejection', (e) => emergency('unhandled rejection', e));
}

/** The last step. Namespace mode: exit with the status. Real PID 1: busybox -f, then wait forever. */
export async function finish(result: ShutdownResult, realPid1: boolean): Promise<never> {
  if (!realPid1) process.exit(result.code);
  const cmd = result.action === 'reboot' ? 'reboot' : result.action === 'halt' ? 'halt' : 'poweroff';
  try {
    await run('busybox', [cmd, '-f'], { timeout: 30_000 });
  } catch (e) {
    process.stderr.write(`milkyway-agent: ${cmd} -f failed: ${(e as Error).message}\n`);
  }
  // PID 1 must not exit (the kernel would panic); stay here until the machine goes away.
  for (;;) await new Promise((r) => setTimeout(r, 60_000));
}
