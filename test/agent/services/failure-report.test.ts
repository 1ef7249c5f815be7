// Failures that say why (agent/services/failure-report.ts, service-unit.ts): a service that
// fails or crash-loops is named on the agent's log with the exit status or signal, the
// reason and its last output lines; restarts are rate-limited; ServiceInfo keeps the last
// output; the start limit names how the last run ended. Then the agent as PID 1 of a
// namespace: a bad entrypoint and a crash loop, seen on the console and in `ctl status`.
import test from 'ava';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceInfo } from '../../../agent/core/agent-api.ts';
import { startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { FailureReporter, outputSuffix, REPORT_LINE_CHARS } from '../../../agent/services/failure-report.ts';
import { started } from '../../../agent/services/readiness/started.ts';
import { ServiceLog } from '../../../agent/services/service-log.ts';
import { ServiceUnit } from '../../../agent/services/service-unit.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';
import { FakeClock, FakeRunner, settle } from './_fake-runner.ts';
import { spec } from './_service-fixture.ts';

const info = (over: Partial<ServiceInfo>): ServiceInfo => ({
  name: 'web/nginx',
  layer: 'web',
  state: 'failed',
  restarts: 0,
  since: '2026-01-01T00:00:00.000Z',
  limitsNotApplied: [],
  ...over,
});

test('FailureReporter says every failure with its reason and last output, as an error', (t) => {
  const lines: [string, string][] = [];
  const r = new FailureReporter((level, m) => lines.push([level, m]));
  r.changed(info({ state: 'running' }));
  r.changed(info({ error: 'exit status 1', lastOutput: ['nginx: [emerg] bind() to 0.0.0.0:80 failed'] }));
  r.changed(info({ error: 'signal SIGSEGV' }));
  t.deepEqual(lines, [
    [
      'error',
      'service web/nginx failed: exit status 1; last output: nginx: [emerg] bind() to 0.0.0.0:80 failed',
    ],
    ['error', 'service web/nginx failed: signal SIGSEGV; it printed nothing'],
  ]);
});

test('FailureReporter says a crash loop at most once per interval, counting what it did not say', (t) => {
  let now = 0;
  const lines: string[] = [];
  const r = new FailureReporter((_l, m) => lines.push(m), { now: () => now, intervalMs: 10_000 });
  for (let i = 0; i < 50; i++) {
    r.changed(info({ state: 'backoff', error: 'exit status 3', lastOutput: [`try ${i}`] }));
    now += 500;
  }
  // 50 restarts in 25 s: said at 0 s, 10 s and 20 s.
  t.is(lines.length, 3);
  t.is(lines[0], 'service web/nginx ended (exit status 3), restarting; last output: try 0');
  t.is(
    lines[1],
    'service web/nginx ended (exit status 3), restarting (19 more restarts not shown); last output: try 20',
  );
  r.changed(info({ error: 'start limit hit' }));
  t.is(
    lines[3],
    'service web/nginx failed: start limit hit (after 9 more restarts not shown); it printed nothing',
  );
});

test('outputSuffix() keeps the last 5 lines, each cut to its limit', (t) => {
  const many = Array.from({ length: 9 }, (_, i) => `line ${i}`);
  t.is(outputSuffix(many), '; last output: line 4 | line 5 | line 6 | line 7 | line 8');
  const long = outputSuffix(['x'.repeat(10_000)]);
  t.is(long.length, '; last output: '.length + REPORT_LINE_CHARS + 1);
});

test('ServiceUnit keeps the last output of a run and names the last run when the start limit hits', async (t) => {
  const clock = new FakeClock();
  const runner = new FakeRunner();
  const log = new ServiceLog('app/svc', {
    ringLines: 100,
    fileBytes: 1 << 20,
    files: 1,
    rateLinesPerSecond: 1e6,
  });
  const u = new ServiceUnit(
    spec('app/svc', 'unused', { restartSec: 0.1, startLimitBurst: 3, startLimitIntervalSec: 60 }),
    { runner, readiness: () => [started], log, changed: () => {}, clock },
  );
  void u.start().catch(() => {});
  for (let i = 0; i < 10 && u.state !== 'failed'; i++) {
    await settle();
    if (u.state === 'running') {
      log.add('stdout', `starting ${i}`);
      log.add('stderr', `fatal: cannot open /var/lib/app/db: Read-only file system (${i})`);
      runner.last.end(3);
    }
    await settle();
    if (u.state === 'backoff') t.is(u.info().error, 'exit status 3');
    await clock.advance(clock.pending()[0] ?? 0);
  }
  t.is(u.state, 'failed');
  t.is(u.info().error, 'start limit hit: more than 3 starts in 60 s; the last run: exit status 3');
  t.deepEqual(u.info().lastOutput?.slice(-2), [
    'starting 2',
    'fatal: cannot open /var/lib/app/db: Read-only file system (2)',
  ]);
  // The agent's own notes ("exited with …") are not the service's output.
  t.false(u.info().lastOutput?.some((l) => l.includes('exited with')));
});

async function bus(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'mway-dbus-');
  await chmod(dir, 0o755);
  const configFile = join(dir, 'bus.conf');
  const address = await writeBusConfig({ configFile, socketPath: join(dir, 'bus') });
  const daemon = await startBusDaemon({ configFile });
  t.teardown(() => daemon.stop());
  return address;
}

test('agent: a bad entrypoint and a crash loop say why on the console and in ctl status', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const layers = join(r.root, 'layers');
  await buildTestLayer(
    pki,
    {
      name: 'broken',
      kind: 'app',
      services: [{ name: 'main', execStart: ['/no/such/server', '-g'], restart: 'no' }],
    },
    join(layers, 'broken.mwl'),
  );
  const crash =
    'echo "listening on :8080"; echo "fatal: cannot write /var/run/app.pid: Read-only file system" >&2; exit 3';
  await buildTestLayer(
    pki,
    {
      name: 'crashy',
      kind: 'app',
      services: [
        {
          name: 'main',
          execStart: ['/bin/sh', '-c', crash],
          restartSec: 0.05,
          startLimitBurst: 3,
          startLimitIntervalSec: 60,
        },
      ],
    },
    join(layers, 'crashy.mwl'),
  );
  const address = await bus(t);
  const { readFile, writeFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(r.configPath, JSON.stringify({ ...cfg, dbus: { address } }));
  const a = startAgent(t, r);
  await a.waitFor(/boot done: 2 services/, 120_000);
  await a.waitFor(/serving org\.milkyway\.Agent1/);
  // Type=simple: both count as started at boot; they fail after, and the console says why.
  await a.waitFor(/service broken\/main failed: [^\n]*/, 60_000);
  await a.waitFor(/service crashy\/main failed: [^\n]*/, 60_000);
  const out = a.output();
  // The exec failure as the sandbox's setpriv printed it, beside the exit status.
  t.regex(
    out,
    /error: service broken\/main failed: exit status \d+; last output: [^\n]*\/no\/such\/server[^\n]*No such file/,
  );
  t.regex(
    out,
    /warn: service crashy\/main ended \(exit status 3\), restarting; last output: listening on :8080 \| fatal: cannot write/,
  );
  t.regex(
    out,
    /error: service crashy\/main failed: start limit hit[^\n]*last output: [^\n]*Read-only file system/,
  );

  const ctl = async (...args: string[]) => {
    const res = await cli('milkyway-agent', ['ctl', ...args, '--bus', address], { timeout: 120_000 });
    t.is(res.exitCode, 0, res.stderr);
    return res.stdout;
  };
  const status = jsonOut(await ctl('status', '--json')) as {
    services: {
      failed: number;
      problems: { name: string; state: string; error: string; lastOutput: string[] }[];
    };
  };
  t.is(status.services.failed, 2);
  const problems = Object.fromEntries(status.services.problems.map((p) => [p.name, p]));
  t.regex(problems['broken/main']?.error ?? '', /^exit status \d+$/);
  t.regex(problems['broken/main']?.lastOutput.join('\n') ?? '', /No such file/);
  t.deepEqual(problems['crashy/main']?.lastOutput, [
    'listening on :8080',
    'fatal: cannot write /var/run/app.pid: Read-only file system',
  ]);
  // The human form of one service's status shows the same reason and output.
  const human = await ctl('status', 'crashy/main');
  t.regex(human, /error: start limit hit/);
  t.regex(human, /lastOutput: [^\n]*Read-only file system/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
