import test from 'ava';
import { isMilkyWayError } from '../../common/error.ts';
import { findTool, requireTool, run } from '../../common/exec.ts';

test('requireTool() names the Debian package of a missing tool', async (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    // veritysetup lives in /usr/sbin, which findTool always searches, so use a tool
    // that is only looked up through PATH by giving a name we map but nobody installs.
    const e = await t.throwsAsync(requireTool('ukify'));
    t.true(isMilkyWayError(e));
    t.is((e as { code?: string }).code, 'E_TOOL_MISSING');
    t.regex(e?.message ?? '', /systemd-ukify/);
  } finally {
    process.env.PATH = saved;
  }
});

test('findTool() finds sbin tools even when PATH lacks sbin', async (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/usr/bin:/bin';
  try {
    t.truthy(await findTool('mkfs.ext4'));
  } finally {
    process.env.PATH = saved;
  }
});

test('run() reports a non-zero exit with the tool name and stderr tail', async (t) => {
  const e = await t.throwsAsync(run('sh', ['-c', 'echo boom >&2; exit 3'], { timeout: 10_000 }));
  t.is((e as { code?: string }).code, 'E_TOOL_FAILED');
  t.regex(e?.message ?? '', /sh exited with 3: boom/);
});

test('run() kills a tool that exceeds its timeout', async (t) => {
  const start = Date.now();
  const e = await t.throwsAsync(run('sleep', ['30'], { timeout: 300 }));
  t.is((e as { code?: string }).code, 'E_TOOL_TIMEOUT');
  t.true(Date.now() - start < 10_000);
});

test('run() returns stdout as bytes when asked', async (t) => {
  const r = await run('printf', ['\\001\\002'], { timeout: 10_000, binary: true });
  t.deepEqual([...(r.stdoutBytes ?? [])], [1, 2]);
});

test('run() calls onSpawn while the program runs, before its exit is awaited', async (t) => {
  // onSpawn comes once, after the start and before the exit the caller awaits.
  let calls = 0;
  let finished = false;
  const done = run('sh', ['-c', 'sleep 0.3; echo out'], {
    timeout: 10_000,
    onSpawn: () => {
      calls++;
      t.false(finished);
    },
  }).then((r) => {
    finished = true;
    return r;
  });
  t.is(calls, 0); // run() first looks the tool up, asynchronously
  const r = await done;
  t.is(calls, 1);
  t.is(r.stdout, 'out\n');
});
