// writableRoot persistent through the agent as PID 1 of a namespace: a service's writes to
// its root (outside any volume) are kept on the data partition (roots/<layer>/<service>) across
// a reboot, the payload never changes, and an upgraded layer (another payload) starts from a
// fresh upper; an upper an earlier release kept in the layer's private data is moved there.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { until } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

// Appends one line to a file of the read-only payload's /etc and keeps running.
const APPEND = 'echo "boot $(cat /proc/sys/kernel/random/uuid)" >> /etc/counted; exec sleep 600';

test('agent: a persistent writable root keeps what the service wrote across a reboot and starts afresh for a new payload', async (t) => {
  t.timeout(180_000);
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const mwl = join(r.root, 'layers', 'keep.mwl');
  const layer = (version: string) =>
    buildTestLayer(
      pki,
      {
        name: 'keep',
        kind: 'app',
        version,
        files: { 'etc/counted': 'from the payload\n' },
        services: [
          { name: 'main', user: 'root', execStart: ['/bin/sh', '-c', APPEND], writableRoot: 'persistent' },
        ],
      },
      mwl,
    );
  await layer('1.0.0');
  const upper = join(r.root, 'data', 'roots', 'keep', 'main', 'upper', 'etc', 'counted');
  const boot = async (lines: number) => {
    const a = startAgent(t, r);
    await a.waitFor(/boot done: 1 services \(0 failed\)/, 60_000);
    await until(
      'the service wrote its line',
      async () => ((await readFile(upper, 'utf8').catch(() => '')).match(/^boot /gm) ?? []).length === lines,
    );
    const text = await readFile(upper, 'utf8');
    await a.kill('SIGTERM');
    t.is(await a.exit, 0);
    return { text, output: a.output() };
  };
  const first = await boot(1);
  // The copied-up file: the payload's line, then the run's.
  t.regex(first.text, /^from the payload\nboot [0-9a-f-]{36}\n$/);
  const second = await boot(2);
  t.true(second.text.startsWith(first.text), second.text);
  t.notRegex(second.output, /started afresh/);
  // Another version is another payload: the old upper goes, the new run copies up afresh.
  await rm(mwl);
  await layer('1.0.1');
  const third = await boot(1);
  t.regex(third.text, /^from the payload\nboot [0-9a-f-]{36}\n$/);
  t.false(third.text.includes(first.text.split('\n')[1] ?? '?'));
  t.regex(third.output, /keep: main's writable root started afresh \(a new payload\)/);
  t.false(existsSync(join(r.root, 'data', 'roots', 'keep', 'main.old')));
  // Where an earlier release kept it (secure/<layer>/root/<service>): moved, and kept.
  const earlier = join(r.root, 'data', 'secure', 'keep', 'root');
  await mkdir(earlier, { recursive: true, mode: 0o700 });
  await rename(join(r.root, 'data', 'roots', 'keep', 'main'), join(earlier, 'main'));
  const fourth = await boot(2);
  t.true(fourth.text.startsWith(third.text), fourth.text);
  t.regex(fourth.output, /keep: main's writable root moved from secure\/keep\/root\//);
  t.false(existsSync(join(earlier, 'main')));
});
