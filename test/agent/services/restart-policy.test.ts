// The restart policy (agent/services/service-unit.ts, restart-policy.ts) against a fake runner
// and a fake clock: Restart=, the doubling backoff and its cap, the start limit and what
// happens when it hits, the healthy-run reset, the start timeout and stop. No process is
// started, so each test takes milliseconds; the real runner is test/agent/services/sandbox.test.ts.
import test, { type ExecutionContext } from 'ava';
import type { AgentChange, ServiceState } from '../../../agent/core/agent-api.ts';
import type { ReadinessCondition } from '../../../agent/services/readiness/condition.ts';
import { started } from '../../../agent/services/readiness/started.ts';
import {
  HEALTHY_MS,
  restartDelay,
  restartsAfter,
  runFailed,
  StartLimit,
} from '../../../agent/services/restart-policy.ts';
import { ServiceLog } from '../../../agent/services/service-log.ts';
import { ServiceUnit } from '../../../agent/services/service-unit.ts';
import { FakeClock, FakeRunner, settle } from './_fake-runner.ts';
import { type SpecInput, spec } from './_service-fixture.ts';

const never: ReadinessCondition = {
  what: 'something that never happens',
  wait: (_run, signal) => new Promise((r) => signal.addEventListener('abort', () => r(false))),
};

function unit(extra: SpecInput = {}, readiness: ReadinessCondition[] = [started]) {
  const clock = new FakeClock();
  const runner = new FakeRunner();
  const changes: string[] = [];
  const log = new ServiceLog('app/svc', {
    ringLines: 1000,
    fileBytes: 1 << 20,
    files: 1,
    rateLinesPerSecond: 1e6,
  });
  const u = new ServiceUnit(spec('app/svc', 'unused', extra), {
    runner,
    readiness: () => readiness,
    log,
    changed: (x) => changes.push(x.state),
    clock,
  });
  const delays = () =>
    [
      ...log
        .tail(10_000)
        .map((l) => l.text)
        .join('\n')
        .matchAll(/restarting in (\d+) ms/g),
    ].map((m) => Number(m[1]));
  return { u, clock, runner, changes, log, delays };
}

/** Ends every run as soon as it starts, with `code`, until the unit settles or `limit` runs. */
async function crashLoop(x: ReturnType<typeof unit>, code: number, limit = 100): Promise<void> {
  for (
    let i = 0;
    i < limit && !(['failed', 'exited', 'stopped'] as ServiceState[]).includes(x.u.state);
    i++
  ) {
    await settle();
    if (x.u.state === 'running') x.runner.last.end(code);
    await settle();
    await x.clock.advance(x.clock.pending()[0] ?? 0);
  }
}

function expectState(t: ExecutionContext, u: ServiceUnit, state: ServiceState): void {
  t.is(u.state, state, u.error ?? '');
}

test('restartDelay() doubles from the first delay and stays at the cap', (t) => {
  t.deepEqual(
    Array.from({ length: 7 }, (_, i) => restartDelay(100, 1000, i)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  );
  t.is(restartDelay(100, 30_000, 5000), 30_000);
  t.is(restartDelay(0, 30_000, 3), 0);
});

test('restartsAfter() follows Restart=: no never, on-failure after a failed run, always after any', (t) => {
  t.deepEqual(
    (['no', 'on-failure', 'always'] as const).map((p) => [restartsAfter(p, false), restartsAfter(p, true)]),
    [
      [false, false],
      [false, true],
      [true, true],
    ],
  );
  t.false(runFailed({ code: 0, signal: null }, false));
  t.true(runFailed({ code: 3, signal: null }, false));
  t.true(runFailed({ code: null, signal: 'SIGSEGV' }, false));
  t.true(runFailed({ code: 0, signal: null }, true), 'killed for not being ready');
});

test('StartLimit admits burst starts per sliding window; interval 0 turns it off', (t) => {
  const l = new StartLimit(3, 1000);
  t.deepEqual(
    [0, 100, 200, 300].map((at) => l.admit(at)),
    [true, true, true, false],
  );
  t.true(l.admit(1000), 'the start at 0 left the window');
  t.false(l.admit(1099));
  t.true(l.admit(1100));
  l.reset();
  t.is(l.count, 0);
  const off = new StartLimit(1, 0);
  t.true([0, 1, 2, 3].every((at) => off.admit(at)));
});

test('on-failure: a crashing service is restarted with doubling backoff up to the cap, then fails at the start limit', async (t) => {
  const x = unit({ restartSec: 0.1, restartMaxDelaySec: 1, startLimitBurst: 10, startLimitIntervalSec: 600 });
  const ready = x.u.start();
  await settle();
  expectState(t, x.u, 'running');
  await ready;
  await crashLoop(x, 1);
  expectState(t, x.u, 'failed');
  t.deepEqual(x.delays(), [100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000]);
  t.is(x.runner.runs.length, 10);
  t.regex(x.u.error ?? '', /^start limit hit: more than 10 starts in 600 s; the last run: exit status 1$/);
  t.is(x.u.info().restarts, 9);
  t.deepEqual(x.u.info().lastExit?.code, 1);
  // Failed stays failed: nothing is scheduled any more.
  t.deepEqual(x.clock.pending(), []);
  await x.clock.advance(3_600_000);
  t.is(x.runner.runs.length, 10);
});

test('the default start limit (5 starts in 10 s) stops a crash loop of the default backoff after 5 runs', async (t) => {
  const x = unit();
  void x.u.start().catch(() => {});
  await crashLoop(x, 3);
  expectState(t, x.u, 'failed');
  t.is(x.runner.runs.length, 5);
  t.deepEqual(x.delays(), [100, 200, 400, 800, 1600]);
});

test('the start limit is a window: restarts spaced wider than interval / burst never hit it', async (t) => {
  const x = unit({ restartSec: 2.5, restartMaxDelaySec: 2.5, startLimitBurst: 5, startLimitIntervalSec: 10 });
  void x.u.start();
  await crashLoop(x, 1, 40);
  t.is(x.runner.runs.length, 41);
  t.not(x.u.state, 'failed');
});

test('an explicit start after the start limit hit resets the limit and the backoff', async (t) => {
  const x = unit({ restartSec: 0.1, startLimitBurst: 2, startLimitIntervalSec: 600 });
  void x.u.start();
  await crashLoop(x, 1);
  expectState(t, x.u, 'failed');
  t.is(x.runner.runs.length, 2);
  void x.u.start();
  await crashLoop(x, 1);
  expectState(t, x.u, 'failed');
  t.is(x.runner.runs.length, 4);
  t.deepEqual(x.delays(), [100, 200, 100, 200]);
});

test('a run that lasted HEALTHY_MS starts the backoff afresh', async (t) => {
  const x = unit({ restartSec: 0.1, restartMaxDelaySec: 30, startLimitBurst: 100 });
  void x.u.start();
  await crashLoop(x, 1, 4);
  t.deepEqual(x.delays(), [100, 200, 400, 800]);
  await settle();
  expectState(t, x.u, 'running');
  await x.clock.advance(HEALTHY_MS);
  x.runner.last.end(1);
  await settle();
  t.deepEqual(x.delays(), [100, 200, 400, 800, 100]);
});

test('Restart=: always restarts after exit 0, on-failure and no settle as exited; no settles a failure as failed', async (t) => {
  const always = unit({ restart: 'always' });
  void always.u.start();
  await settle();
  always.runner.last.end(0);
  await settle();
  expectState(t, always.u, 'backoff');
  await always.clock.advance(100);
  t.is(always.runner.runs.length, 2);
  expectState(t, always.u, 'running');

  for (const restart of ['on-failure', 'no'] as const) {
    const x = unit({ restart });
    await x.u.start();
    x.runner.last.end(0);
    await settle();
    expectState(t, x.u, 'exited');
    t.deepEqual(x.clock.pending(), []);
  }
  const no = unit({ restart: 'no' });
  await no.u.start();
  no.runner.last.end(null, 'SIGSEGV');
  await settle();
  expectState(t, no.u, 'failed');
  t.is(no.u.error, 'signal SIGSEGV');
  t.is(no.runner.runs.length, 1);
});

test('not ready within the start timeout: the run is killed, counts as failed, and on-failure restarts it', async (t) => {
  const x = unit({ timeoutStartSec: 0.3 }, [never]);
  const ready = x.u.start();
  await x.clock.advance(299);
  expectState(t, x.u, 'starting');
  t.false(x.runner.last.killed);
  await x.clock.advance(1);
  t.true(x.runner.runs[0]?.killed);
  expectState(t, x.u, 'backoff');
  t.regex(x.u.error ?? '', /^not ready within 300 ms \(waiting for something that never happens\)$/);
  await x.clock.advance(100);
  t.is(x.runner.runs.length, 2);
  expectState(t, x.u, 'starting');
  await x.u.stop();
  await t.throwsAsync(ready, { message: /stopped/ });
});

test('start() resolves once ready and rejects when the run fails before it is ready', async (t) => {
  const x = unit({ restart: 'no', timeoutStartSec: 1 }, [never]);
  const ready = x.u.start();
  await settle();
  x.runner.last.end(2);
  await t.throwsAsync(ready, { message: 'exit status 2' });
  expectState(t, x.u, 'failed');
});

test('stop() sends the stop signal with the stop timeout; a stopped service is not restarted, even with always', async (t) => {
  const x = unit({ restart: 'always', killSignal: 'SIGINT', timeoutStopSec: 1.234 });
  await x.u.start();
  await x.u.stop();
  t.deepEqual(x.runner.last.stops, [{ signal: 'SIGINT', timeoutMs: 1234 }]);
  expectState(t, x.u, 'stopped');
  await x.clock.advance(60_000);
  t.is(x.runner.runs.length, 1);
  t.deepEqual(x.changes, ['starting', 'running', 'stopping', 'stopped']);
});

test('stop() during backoff cancels the restart', async (t) => {
  const x = unit();
  await x.u.start();
  x.runner.last.end(1);
  await settle();
  expectState(t, x.u, 'backoff');
  await x.u.stop();
  expectState(t, x.u, 'stopped');
  t.deepEqual(x.clock.pending(), []);
  await x.clock.advance(60_000);
  t.is(x.runner.runs.length, 1);
});

test('a runner that cannot start the service fails it at once, without restarts', async (t) => {
  const x = unit();
  x.runner.refuse = new Error('bwrap not found (install bubblewrap)');
  await t.throwsAsync(x.u.start(), { message: /bwrap not found/ });
  expectState(t, x.u, 'failed');
  t.regex(
    x.log
      .tail(10)
      .map((l) => l.text)
      .join('\n'),
    /cannot start: bwrap not found/,
  );
  t.deepEqual(x.clock.pending(), []);
});

test('readiness conditions prepare the run: what they return reaches the runner', async (t) => {
  let closed = 0;
  const notify: ReadinessCondition = {
    what: 'READY=1',
    prepare: async () => ({ notifyDir: '/run/x' }),
    wait: async () => true,
    close: async () => {
      closed++;
    },
  };
  const x = unit({ restart: 'no' }, [notify, started]);
  await x.u.start();
  t.deepEqual(x.runner.last.options, { notifyDir: '/run/x' });
  x.runner.last.end(0);
  await settle();
  t.is(closed, 1, 'closed once the run ended');
});

test('the state changes a supervisor sees for a crash, a backoff and a restart', async (t) => {
  const x = unit();
  await x.u.start();
  x.runner.last.end(1);
  await x.clock.advance(100);
  t.deepEqual(x.changes, ['starting', 'running', 'backoff', 'starting', 'running']);
  const change: AgentChange = { kind: 'service', name: x.u.spec.name, state: x.u.state };
  t.is(change.state, 'running');
});
