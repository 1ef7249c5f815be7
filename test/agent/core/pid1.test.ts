import test from 'ava';
import { execa } from 'execa';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { countPowerPresses, INPUT_EVENT_SIZE, watchPowerButton } from '../../../agent/core/power-button.ts';
import { ROOT, tempDir } from '../../helpers.ts';
import { makePki, makeRoot } from '../_namespace.ts';

for (const kind of ['exception', 'rejection']) {
  test(`an uncaught ${kind} takes the orderly emergency path (stop, sync, reboot status) instead of crashing`, async (t) => {
    const r = await makeRoot(t, await makePki(t));
    const child = await execa(
      process.execPath,
      [join(ROOT, 'test/agent/core/emergency-path.ts'), r.configPath, r.root, kind],
      { reject: false, timeout: 60_000 },
    );
    t.is(child.exitCode, 1, child.stderr);
    t.regex(child.stderr, new RegExp(`(unhandled rejection|uncaught exception): Error: boom \\(${kind}\\)`));
    t.regex(child.stderr, /shutting down \(reboot\): emergency after/);
    t.regex(child.stderr, /shutdown done \(reboot\)/);
  });
}

function event(type: number, code: number, value: number): Buffer {
  const b = Buffer.alloc(INPUT_EVENT_SIZE);
  b.writeBigInt64LE(1n, 0);
  b.writeBigInt64LE(2n, 8);
  b.writeUInt16LE(type, 16);
  b.writeUInt16LE(code, 18);
  b.writeInt32LE(value, 20);
  return b;
}

test('countPowerPresses() counts KEY_POWER presses only (not releases, repeats or other keys)', (t) => {
  const bytes = Buffer.concat([
    event(1, 116, 1),
    event(0, 0, 0), // EV_SYN
    event(1, 116, 0), // release
    event(1, 116, 2), // autorepeat
    event(1, 30, 1), // KEY_A
    event(1, 116, 1),
  ]);
  t.is(countPowerPresses(bytes), 2);
  t.is(countPowerPresses(bytes.subarray(0, 23)), 0);
});

test('watchPowerButton() reads input_event records from event devices and fires on KEY_POWER', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'event0');
  await execa('mkfifo', ['-m', '600', fifo]);
  const presses: string[] = [];
  const w = watchPowerButton((d) => presses.push(d), { dir, rescanMs: 100 });
  t.teardown(() => w.stop());
  const fh = await open(fifo, 'w');
  // Split a record across writes: the reader must reassemble it.
  const rec = Buffer.concat([event(1, 30, 1), event(1, 116, 1)]);
  await fh.write(rec.subarray(0, 30));
  await new Promise((r) => setTimeout(r, 50));
  await fh.write(rec.subarray(30));
  for (let i = 0; i < 100 && presses.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  // Stop before the writer goes: its EOF would end the stream, a rescan would reopen the
  // FIFO, and that open blocks (no writer) in libuv's thread pool for good, so the test
  // process could never exit. Event devices are character devices: their open never blocks.
  w.stop();
  await fh.close();
  t.deepEqual(presses, [fifo]);
  t.deepEqual(w.devices(), []);
});
