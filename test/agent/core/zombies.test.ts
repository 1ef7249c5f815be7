import test from 'ava';
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT, tempDir } from '../../helpers.ts';

test('no zombies accumulate under PID 1 when a service double-forks, orphans its children and is stopped and restarted', async (t) => {
  const dir = await tempDir(t);
  const r = await execa(
    'unshare',
    [
      '--pid',
      '--fork',
      '--mount',
      '--mount-proc',
      process.execPath,
      join(ROOT, 'test/agent/core/zombie-child.ts'),
      join(dir, 'run'),
    ],
    { reject: false, timeout: 60_000 },
  );
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    pid: number;
    whileRunning: string[];
    afterStop: string[];
    log: string[];
    stub: string[];
  };
  t.is(out.pid, 1);
  t.true(out.log.includes('forked'), out.log.join('\n'));
  t.deepEqual(out.whileRunning, []);
  t.deepEqual(out.afterStop, []);
  t.true(
    out.stub.some((l) => /SIGKILL/.test(l)),
    out.stub.join('\n'),
  );
});
