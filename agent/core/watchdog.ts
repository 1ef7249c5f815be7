// The hardware watchdog PID 1 feeds (Linux Documentation/watchdog/watchdog-api.rst): opening
// /dev/watchdog starts the timer, any write restarts it, and writing 'V' just before close
// stops it ("magic close", honoured unless the kernel has CONFIG_WATCHDOG_NOWAYOUT). It is
// fed from a timer on the agent's own event loop, never from a worker: what it must catch is
// the agent itself hung (a blocked loop, a deadlocked boot), and a trial slot that hangs before
// its health gate must be reset so stage 1 falls back (doc/how-to-update.md, "Hangs"). QEMU:
// `-device i6300esb` (mway-image run adds it), the `i6300esb` module in the initramfs.
import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogFn } from './agent-log.ts';

export interface WatchdogOptions {
  /** The device; opening it arms the timer. */
  device: string;
  /** How often it is fed (well under the device's timeout: i6300esb's default is 30 s). */
  feedMs: number;
  log: LogFn;
}

export interface Watchdog {
  readonly device: string;
  /** Feeds written so far (the status reports it). */
  readonly feeds: number;
  /** Stops feeding and leaves the timer running: the machine resets unless something else happens first. */
  stopFeeding(): void;
  /** Magic close: 'V', then close — the timer stops (a poweroff that must stay off). */
  disarm(): void;
}

/** The device the agent uses: `auto` is /dev/watchdog on a real PID 1 when the kernel made one. */
export function watchdogDevice(
  configured: string,
  pid1: boolean,
  path: (p: string) => string,
): string | null {
  if (configured === 'none') return null;
  if (configured !== 'auto') return path(configured);
  return pid1 && existsSync('/dev/watchdog') ? '/dev/watchdog' : null;
}

/** Opens `device` (arming it) and feeds it every `feedMs` on this event loop. */
export function startWatchdog(o: WatchdogOptions): Watchdog {
  // O_WRONLY without O_CREAT: a missing device must fail, not become a file. (libuv opens
  // with O_CLOEXEC: services never inherit it, so only the agent can keep the machine up.)
  let fd: number | undefined = openSync(o.device, constants.O_WRONLY);
  let feeds = 0;
  let last = Date.now();
  const feed = () => {
    if (fd === undefined) return;
    const now = Date.now();
    // A late feed is the loop having been blocked: say so, it is what the watchdog is about.
    if (now - last > 3 * o.feedMs)
      o.log(
        'warn',
        `watchdog: fed ${((now - last) / 1000).toFixed(1)} s after the last feed (the event loop was blocked)`,
      );
    last = now;
    try {
      writeSync(fd, '\0');
      feeds++;
    } catch (e) {
      o.log('error', `watchdog: cannot feed ${o.device}: ${(e as Error).message}`);
    }
  };
  feed();
  const timer = setInterval(feed, o.feedMs);
  const stopFeeding = () => clearInterval(timer);
  o.log('info', `watchdog: ${o.device} armed, fed every ${(o.feedMs / 1000).toFixed(1)} s`);
  return {
    device: o.device,
    get feeds() {
      return feeds;
    },
    stopFeeding,
    disarm() {
      stopFeeding();
      if (fd === undefined) return;
      try {
        writeSync(fd, 'V');
      } finally {
        closeSync(fd);
        fd = undefined;
      }
      o.log('info', `watchdog: ${o.device} disarmed (magic close)`);
    },
  };
}

/** WDIOF_CARDRESET (include/uapi/linux/watchdog.h): the last reboot was the watchdog's doing. */
const WDIOF_CARDRESET = 0x20;

/**
 * Whether a watchdog reset the machine into this boot: the driver's bootstatus in sysfs
 * (i6300esb reads it from the chip's timeout flag, which QEMU keeps across its reset).
 */
export async function resetByWatchdog(sys = '/sys/class/watchdog'): Promise<boolean> {
  const names = await readdir(sys).catch(() => [] as string[]);
  for (const n of names) {
    const v = Number.parseInt(await readFile(join(sys, n, 'bootstatus'), 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(v) && (v & WDIOF_CARDRESET) !== 0) return true;
  }
  return false;
}
