// The agent's watchdog feeding, on the host: a REAL agent in namespace mode feeds a FIFO
// named as its watchdog device (the host kernel has neither softdog nor a hardware watchdog,
// so /dev/watchdog cannot exist here; the guest's i6300esb is test/update/ab-update-qemu's).
// The FIFO's reader sees each feed byte as /dev/watchdog's driver would: steady while the
// agent runs, none while it is frozen (SIGSTOP: a hang, to the watchdog), a late-feed warning
// after it resumes; 'V' (magic close) last on a poweroff, none on a reboot, which leaves the
// timer armed so a reboot that never happens is still caught.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { makePki, makeRoot, startAgent } from '../agent/_namespace.ts';
import { until } from '../helpers.ts';

const FEED_MS = 200;

/** Reads what is written into the FIFO at `path`, each byte with when it came. */
function reader(path: string) {
  // Non-blocking and polled: opening does not wait for a writer, no read is left pending in
  // the thread pool when the test ends, and a second agent can open the FIFO again.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const got: { at: number; byte: number }[] = [];
  const buf = Buffer.alloc(4096);
  const poll = setInterval(() => {
    for (;;) {
      let n = 0;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw e;
      }
      if (n === 0) return; // no writer right now
      for (const b of buf.subarray(0, n)) got.push({ at: Date.now(), byte: b });
    }
  }, 20);
  return {
    got,
    close: () => {
      clearInterval(poll);
      closeSync(fd);
    },
  };
}

test('the agent feeds its watchdog from its own loop: steady, none while hung, V on poweroff, none on reboot', async (t) => {
  const pki = await makePki(t);
  const root = await makeRoot(t, pki, { config: { watchdog: { device: '/watchdog', feedMs: FEED_MS } } });
  const fifo = join(root.root, 'watchdog');
  await execa('mkfifo', [fifo], { timeout: 10_000 });
  const r = reader(fifo);
  t.teardown(() => r.close());

  const agent = startAgent(t, root);
  await agent.waitFor(/watchdog: \/.*\/watchdog armed, fed every 0\.2 s/);
  await agent.waitFor(/boot done:/);
  await until('ten feeds', () => r.got.length >= 10);
  t.true(
    r.got.every((g) => g.byte === 0),
    'feeds are NUL bytes',
  );

  // Frozen: the loop runs no timer, so nothing is written; the watchdog would reset now.
  const pid = await agent.hostPid();
  process.kill(pid, 'SIGSTOP');
  const frozenAt = r.got.length;
  await new Promise((res) => setTimeout(res, 8 * FEED_MS));
  // At most one feed that was already under way when the signal landed.
  t.true(r.got.length - frozenAt <= 1, `fed ${r.got.length - frozenAt} times while stopped`);
  const before = r.got.length;
  process.kill(pid, 'SIGCONT');
  await until('feeds again', () => r.got.length >= before + 3);
  await agent.waitFor(/watchdog: fed \d+\.\d s after the last feed \(the event loop was blocked\)/);

  // Poweroff: the magic close comes last, after every feed.
  process.kill(pid, 'SIGTERM');
  t.is(await agent.exit, 0);
  await until('the magic close', () => r.got.at(-1)?.byte === 0x56);
  t.is(r.got.filter((g) => g.byte === 0x56).length, 1);
  t.regex(agent.output(), /watchdog: \/.*\/watchdog disarmed \(magic close\)/);

  // Reboot: the feeds stop, the timer stays armed (no V).
  const second = startAgent(t, root);
  const fromHere = r.got.length;
  await until('the second boot feeds', () => r.got.length >= fromHere + 5);
  process.kill(await second.hostPid(), 'SIGINT');
  t.is(await second.exit, 133);
  await new Promise((res) => setTimeout(res, 3 * FEED_MS));
  const afterReboot = r.got.slice(fromHere);
  t.false(
    afterReboot.some((g) => g.byte === 0x56),
    'no magic close on a reboot',
  );
  t.notRegex(second.output(), /disarmed/);
});

test('a watchdog device that cannot be opened is a warning, not a failed boot', async (t) => {
  const pki = await makePki(t);
  const root = await makeRoot(t, pki, { config: { watchdog: { device: '/no/such/watchdog' } } });
  const agent = startAgent(t, root);
  await agent.waitFor(/boot done:/);
  t.regex(agent.output(), /watchdog: cannot open .*\/no\/such\/watchdog: ENOENT.*; a hang is not caught/);
  process.kill(await agent.hostPid(), 'SIGTERM');
  t.is(await agent.exit, 0);
});

test('the agent config refuses a relative watchdog device and a feed interval out of range', async (t) => {
  const { parseAgentConfig } = await import('../../agent/core/agent-config.ts');
  t.throws(() => parseAgentConfig({ watchdog: { device: 'dev/watchdog' } }), {
    message: /watchdog\.device/,
  });
  t.throws(() => parseAgentConfig({ watchdog: { feedMs: 10 } }), { message: /watchdog\.feedMs/ });
  t.like(parseAgentConfig({}).watchdog, { device: 'auto', feedMs: 5000 });
});
