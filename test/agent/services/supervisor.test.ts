import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../../../common/index.ts';
import { sandboxExecOnPath } from './_sandbox-exec.ts';
import { fixture, logText, spec, until } from './_service-fixture.ts';

test('Supervisor starts a service after what it requires is ready (sd_notify READY=1)', async (t) => {
  const f = await fixture(t);
  f.sup.add(spec('db/db', 'sleep 0.4; systemd-notify --ready; exec sleep 60', { type: 'notify' }));
  f.sup.add(spec('web/web', 'exec sleep 60', { requires: ['db/db'], after: ['db/db'] }));
  await f.sup.startAll();
  t.is(f.sup.get('db/db').state, 'running');
  t.is(f.sup.get('web/web').state, 'running');
  const order = f.changes.filter((c) => c.kind === 'service').map((c) => `${c.name}:${c.state}`);
  t.true(order.indexOf('db/db:running') < order.indexOf('web/web:starting'), order.join(' '));
  await f.sup.stopAll();
  const stops = f.changes.map((c) => `${c.name}:${'state' in c ? c.state : ''}`);
  t.true(stops.lastIndexOf('web/web:stopped') < stops.lastIndexOf('db/db:stopping'), stops.join(' '));
});

test('Supervisor restarts on failure with growing backoff, then marks the service failed at the start limit', async (t) => {
  const f = await fixture(t);
  f.sup.add(
    spec('crash/crash', 'echo boom; exit 3', {
      restartSec: 0.05,
      startLimitBurst: 4,
      startLimitIntervalSec: 60,
    }),
  );
  await f.sup.startAll();
  t.true(await until(() => f.sup.get('crash/crash').state === 'failed', 15_000));
  const info = f.sup.get('crash/crash').info();
  t.regex(info.error ?? '', /start limit/);
  t.is(info.restarts, 3);
  t.deepEqual(info.lastExit?.code, 3);
  const delays = [...logText(f, 'crash/crash').matchAll(/restarting in (\d+) ms/g)].map((m) => Number(m[1]));
  t.deepEqual(delays, [50, 100, 200, 400]);
  // A failed service stays failed until started again, which resets the limit.
  await new Promise((r) => setTimeout(r, 300));
  t.is(f.sup.get('crash/crash').state, 'failed');
  // start() may resolve (a run was ready before it crashed) or reject (every run crashed first).
  await f.sup
    .get('crash/crash')
    .start()
    .catch(() => {});
  t.true(await until(() => f.sup.get('crash/crash').state === 'failed', 15_000));
  t.is([...logText(f, 'crash/crash').matchAll(/restarting in/g)].length, 8);
});

test('Supervisor stops with SIGTERM, then SIGKILL after the stop timeout, and empties the cgroup', async (t) => {
  const f = await fixture(t);
  f.sup.add(spec('polite/polite', 'trap "echo got TERM; exit 0" TERM; while :; do sleep 0.05; done'));
  f.sup.add(
    spec('stubborn/stubborn', 'trap "echo ignoring TERM" TERM; while :; do sleep 0.05; done', {
      timeoutStopSec: 0.3,
    }),
  );
  await f.sup.startAll();
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await f.sup.get('polite/polite').stop();
  t.true(Date.now() - t0 < 2000);
  t.regex(logText(f, 'polite/polite'), /got TERM/);
  t.is(f.sup.get('polite/polite').lastExit?.code, 0);
  await f.sup.get('stubborn/stubborn').stop();
  t.regex(logText(f, 'stubborn/stubborn'), /ignoring TERM/);
  t.regex(logText(f, 'stubborn/stubborn'), /SIGKILL/);
  t.is(f.sup.get('stubborn/stubborn').state, 'stopped');
  if (f.cgroupRoot !== undefined) {
    const left = (await readdir(f.cgroupRoot, { withFileTypes: true })).filter((d) => d.isDirectory());
    t.deepEqual(left, []);
  }
});

test('Supervisor fails a service that is not ready within its start timeout', async (t) => {
  const f = await fixture(t);
  f.sup.add(spec('slow/slow', 'exec sleep 60', { type: 'notify', timeoutStartSec: 0.3, restart: 'no' }));
  await t.throwsAsync(f.sup.get('slow/slow').start(), { message: /not ready within 300 ms/ });
  t.is(f.sup.get('slow/slow').state, 'failed');
});

test('Supervisor marks dependents failed when a requirement fails', async (t) => {
  const f = await fixture(t);
  f.sup.add(spec('a/a', 'exit 1', { restart: 'no', type: 'notify' }));
  f.sup.add(spec('b/b', 'exec sleep 60', { requires: ['a/a'], after: ['a/a'] }));
  await f.sup.startAll();
  await until(() => f.sup.get('b/b').state === 'failed');
  t.is(f.sup.get('b/b').state, 'failed');
  t.regex(f.sup.get('b/b').error ?? '', /requirement failed/);
});

test('Supervisor readiness by TCP port and by exec probe inside the sandbox', async (t) => {
  await sandboxExecOnPath();
  const f = await fixture(t);
  const port = 20000 + (process.pid % 20000);
  f.sup.add(
    spec(
      'tcp/tcp',
      `sleep 0.3; exec perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>${port},Listen=>5,ReuseAddr=>1) or die $!; sleep 60'`,
      { readiness: { type: 'tcp', port } },
    ),
  );
  f.sup.add(
    spec('probe/probe', 'sleep 0.3; touch /tmp/ready; exec sleep 60', {
      readiness: { type: 'exec', command: ['test', '-e', '/tmp/ready'] },
    }),
  );
  await f.sup.startAll();
  t.is(f.sup.get('tcp/tcp').state, 'running');
  t.is(f.sup.get('probe/probe').state, 'running');
});

test("an exec probe runs nothing of the sandbox's root with the agent's credentials: a layer's own hostile setpriv never sees them", async (t) => {
  await sandboxExecOnPath();
  const f = await fixture(t);
  const dir = await mkdtemp(join(tmpdir(), 'mway-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'out');
  await mkdir(out);
  // What a layer could ship as /usr/bin/setpriv: it records the capabilities it got, then does
  // its job (the service's own start runs it too, with the service's bounded set).
  const hostile = join(dir, 'setpriv');
  await writeFile(
    hostile,
    '#!/bin/sh\ngrep CapEff /proc/self/status >> /tmp/out/caps\nexec /run/real-setpriv "$@"\n',
    {
      mode: 0o755,
    },
  );
  f.sup.add(
    spec('hostile/hostile', 'sleep 0.3; touch /tmp/ready; exec sleep 60', {
      readiness: { type: 'exec', command: ['sh', '-c', 'test -e /tmp/ready && setpriv --help >/dev/null'] },
      binds: [
        { src: await requireTool('setpriv'), dest: '/run/real-setpriv', readOnly: true },
        { src: hostile, dest: '/usr/bin/setpriv', readOnly: true },
        { src: out, dest: '/tmp/out', readOnly: false },
      ],
    }),
  );
  await f.sup.startAll();
  t.is(f.sup.get('hostile/hostile').state, 'running');
  const lines = (await readFile(join(out, 'caps'), 'utf8')).trim().split('\n');
  // The service's start and the probe's own call: both with no more than the service may have.
  t.true(lines.length >= 2, lines.join('\n'));
  const CAP_SYS_ADMIN = 21n;
  for (const line of lines) {
    const caps = BigInt(`0x${line.split(/\s+/)[1]}`);
    t.is((caps >> CAP_SYS_ADMIN) & 1n, 0n, `the hostile setpriv ran with CAP_SYS_ADMIN: ${line}`);
  }
});

test('ServiceLog bounds a flood of output in memory and on disk, and says what it dropped', async (t) => {
  const f = await fixture(t, { ringLines: 100, fileBytes: 16 * 1024, files: 2, rateLinesPerSecond: 500 });
  f.sup.add(spec('flood/flood', 'exec yes "flood line with some text in it"', { restart: 'no' }));
  await f.sup.startAll();
  await new Promise((r) => setTimeout(r, 2500));
  await f.sup.get('flood/flood').stop();
  const tail = f.sup.get('flood/flood').ctx.log.tail(10_000);
  t.true(tail.length <= 100);
  const files = (await readdir(join(f.dir, 'logs'))).sort();
  t.deepEqual(files, ['flood_flood.log', 'flood_flood.log.1', 'flood_flood.log.2']);
  let total = 0;
  for (const name of files) total += (await stat(join(f.dir, 'logs', name))).size;
  t.true(total <= 3 * 16 * 1024, `${total} bytes on disk`);
  const { readFile } = await import('node:fs/promises');
  let all = '';
  for (const name of files) all += await readFile(join(f.dir, 'logs', name), 'utf8');
  t.regex(all, /\d+ lines dropped \(rate limit\)/);
  t.regex(all, /^\d{4}-\d\d-\d\dT[\d:.]+Z stdout flood line/m);
});
