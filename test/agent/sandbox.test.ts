import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fixture, logText, spec, until } from './_service-fixture.ts';

async function runOnce(
  t: Parameters<typeof fixture>[0],
  script: string,
  extra: Parameters<typeof spec>[2] = {},
) {
  const f = await fixture(t);
  f.sup.add(spec('box/box', script, { restart: 'no', ...extra }));
  await f.sup.startAll();
  await until(() => ['exited', 'failed'].includes(f.sup.get('box/box').state));
  return { f, out: logText(f, 'box/box') };
}

test('sandbox: own PID namespace, no network, uid/gid switched, no capabilities, no_new_privs', async (t) => {
  const { f, out } = await runOnce(
    t,
    'echo pid=$$; id -u; id -g; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "',
    { uid: 1000, gid: 1000 },
  );
  t.is(f.sup.get('box/box').state, 'exited', out);
  t.regex(out, /stdout pid=2\b/);
  // The agent's own lines (`agent ready`) may fall between the service's: compare its output alone.
  const stdout = out
    .split('\n')
    .filter((l) => l.startsWith('stdout '))
    .join('\n');
  t.regex(stdout, /stdout 1000\nstdout 1000/);
  t.regex(out, /CapEff:\s+0000000000000000/);
  t.regex(out, /CapBnd:\s+0000000000000000/);
  t.regex(out, /NoNewPrivs:\s+1/);
  t.regex(out, /stdout lo\n/);
  t.notRegex(out, /stdout eth|stdout ens/);
});

test('sandbox: keeps exactly the capabilities listed, as ambient caps of a non-root uid', async (t) => {
  const { out } = await runOnce(t, 'grep -E "^(CapEff|CapBnd|CapAmb)" /proc/self/status', {
    uid: 1000,
    gid: 1000,
    capabilities: ['CAP_NET_BIND_SERVICE'],
  });
  // CAP_NET_BIND_SERVICE is bit 10.
  t.regex(out, /CapEff:\s+0000000000000400/);
  t.regex(out, /CapBnd:\s+0000000000000400/);
  t.regex(out, /CapAmb:\s+0000000000000400/);
});

test('sandbox: only its own data directories are bound in, and the root is read-only', async (t) => {
  const dir = await (await import('../helpers.ts')).tempDir(t);
  await mkdir(join(dir, 'mine'));
  await mkdir(join(dir, 'other'));
  await writeFile(join(dir, 'other', 'secret'), 'no');
  const { out } = await runOnce(
    t,
    `echo hi > /tmp/data/own/file && echo wrote; ls /tmp/data; cat ${join(dir, 'other', 'secret')} || echo hidden; touch /usr/x 2>/dev/null || echo ro`,
    { binds: [{ src: join(dir, 'mine'), dest: '/tmp/data/own', readOnly: false }] },
  );
  t.regex(out, /stdout wrote/);
  t.regex(out, /stdout own\n/);
  t.regex(out, /stdout ro/);
  const { readFile } = await import('node:fs/promises');
  t.is(await readFile(join(dir, 'mine', 'file'), 'utf8'), 'hi\n');
  // The host's /tmp is replaced by a private tmpfs, so the other directory is not visible.
  t.regex(out, /stdout hidden/);
});

test('sandbox: limits that the host cgroup cannot apply are reported per service', async (t) => {
  const { f } = await runOnce(t, 'exit 0', { limits: { memoryMax: 64 << 20, pidsMax: 64, cpuWeight: 50 } });
  const info = f.sup.get('box/box').info();
  // On this host cgroup v2 has no memory/pids/cpu controllers; in the QEMU guest it has.
  const { existsSync } = await import('node:fs');
  if (
    !existsSync('/sys/fs/cgroup/unified/memory.pressure') ||
    !existsSync('/sys/fs/cgroup/cgroup.subtree_control')
  ) {
    t.deepEqual(info.limitsNotApplied.sort(), ['cpu.weight', 'memory.max', 'pids.max']);
  } else t.pass();
  t.regex(logText(f, 'box/box'), /limits not applied/);
});
