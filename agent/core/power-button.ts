// The power button, as systemd-logind handles it: watch every /dev/input/event* device for
// KEY_POWER presses and start the orderly poweroff. QEMU's `system_powerdown` presses the
// ACPI power button, which the kernel's `button` driver reports through evdev.
// struct input_event on 64-bit: timeval (16) · type u16 · code u16 · value s32 = 24 bytes.
import { createReadStream, type ReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const INPUT_EVENT_SIZE = 24;
export const EV_KEY = 1;
export const KEY_POWER = 116;

/** Decodes packed input_event records; returns the count of KEY_POWER presses (value 1). */
export function countPowerPresses(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n = 0;
  for (let off = 0; off + INPUT_EVENT_SIZE <= bytes.length; off += INPUT_EVENT_SIZE) {
    const type = view.getUint16(off + 16, true);
    const code = view.getUint16(off + 18, true);
    const value = view.getInt32(off + 20, true);
    if (type === EV_KEY && code === KEY_POWER && value === 1) n++;
  }
  return n;
}

export interface PowerButtonWatch {
  devices(): string[];
  stop(): void;
}

/**
 * Watches `dir` (default /dev/input) for event devices, including ones that appear later
 * (modules loading), rescanning every `rescanMs`. Calls `onPress` per KEY_POWER press.
 */
export function watchPowerButton(
  onPress: (device: string) => void,
  options: { dir?: string; rescanMs?: number } = {},
): PowerButtonWatch {
  const dir = options.dir ?? '/dev/input';
  const streams = new Map<string, ReadStream>();
  // A scan still in flight when stop() runs must not open a device afterwards: nothing
  // would close it.
  let stopped = false;
  const attach = (path: string) => {
    if (stopped || streams.has(path)) return;
    const s = createReadStream(path, { highWaterMark: INPUT_EVENT_SIZE * 64 });
    streams.set(path, s);
    let rest = Buffer.alloc(0);
    s.on('data', (chunk) => {
      const buf = Buffer.concat([rest, chunk as Buffer]);
      const whole = buf.length - (buf.length % INPUT_EVENT_SIZE);
      const presses = countPowerPresses(buf.subarray(0, whole));
      rest = buf.subarray(whole);
      for (let i = 0; i < presses; i++) onPress(path);
    });
    // A device that goes away (or cannot be read) is dropped; a rescan may find it again.
    s.on('error', () => streams.delete(path));
    s.on('close', () => streams.delete(path));
  };
  const scan = async () => {
    try {
      for (const name of await readdir(dir)) if (/^event\d+$/.test(name)) attach(join(dir, name));
    } catch {
      // no /dev/input yet
    }
  };
  void scan();
  const timer = setInterval(() => void scan(), options.rescanMs ?? 5000);
  timer.unref();
  return {
    devices: () => [...streams.keys()],
    stop() {
      stopped = true;
      clearInterval(timer);
      for (const s of streams.values()) s.destroy();
      streams.clear();
    },
  };
}
