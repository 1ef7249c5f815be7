// What the QEMU fleet tests share: milkywaysrvd as a real process on the host loopback, and a
// guest booted from a disk (optionally with a cloud-init seed disk) whose console lines can be
// waited for.
import { appendFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { type QemuRun, runQemu } from '../../imagebuild/qemu-run.ts';
import { BINS } from '../helpers.ts';

/** Starts milkywaysrvd as a real process; resolves once it printed where it listens. */
export async function startBroker(
  t: ExecutionContext,
  config: string,
  timeoutMs: number,
): Promise<{ lines: string[] }> {
  const proc = execa(process.execPath, [BINS.milkywaysrvd, '--config', config, '--json'], {
    reject: false,
    timeout: timeoutMs,
    buffer: false,
  });
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  const lines: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('milkywaysrvd did not start in 20 s')), 20_000);
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`milkywaysrvd exited ${String(r.exitCode)}: ${lines.join('\n')}`));
    });
  });
  return { lines };
}

/**
 * Boots `disk` with no forwards, letting the guest reboot (its writes kept across reboots in
 * one snapshot); every console line is kept (and appended to `log`, to follow a run as it goes).
 * `until(re, from, ms)` resolves the first console line matching at or after line index `from`;
 * undefined once QEMU ended or after `ms` (default `waitMs`, else the run's timeout), so a line
 * that never comes fails the assertion in bounded time instead of hanging the run.
 */
export function bootGuest(
  t: ExecutionContext,
  disk: string,
  o: {
    timeoutMs: number;
    seed?: string;
    memoryMiB?: number;
    log?: string;
    waitMs?: number;
    /** The i6300esb watchdog (imagebuild/qemu-run.ts): a hung guest resets. */
    watchdog?: boolean;
    nics?: ReadonlyArray<{ netdev: string; mac: string }>;
  },
) {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string | undefined) => void }[] = [];
  let ended = false;
  const started = runQemu({
    disk,
    timeout: o.timeoutMs,
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    ...(o.memoryMiB === undefined ? {} : { memoryMiB: o.memoryMiB }),
    ...(o.nics === undefined ? {} : { nics: o.nics }),
    serial: 'none',
    snapshot: true,
    noReboot: false,
    ...(o.watchdog === true ? { watchdog: true } : {}),
    onLine: (l) => {
      lines.push(l);
      if (o.log !== undefined) appendFileSync(o.log, `${l}\n`);
      for (const w of waiters.splice(0)) {
        if (w.re.test(l)) w.resolve(l);
        else waiters.push(w);
      }
    },
  }).then((r: QemuRun) => {
    t.teardown(() => r.kill());
    void r.done.then(() => {
      ended = true;
      for (const w of waiters.splice(0)) w.resolve(undefined);
    });
    return r;
  });
  return {
    lines,
    started,
    until(re: RegExp, from = 0, ms = o.waitMs ?? o.timeoutMs): Promise<string | undefined> {
      const hit = lines.slice(from).find((l) => re.test(l));
      if (hit !== undefined || ended) return Promise.resolve(hit);
      return new Promise((resolve) => {
        const w = {
          re,
          resolve: (l: string | undefined) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          resolve(undefined);
        }, ms);
        waiters.push(w);
      });
    },
  };
}
