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
    { uid: 1000, gid: 1000, privateNetwork: true },
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

test('sandbox: /tmp is a private sticky 1777 tmpfs a non-root service writes to; /run is 0755 root', async (t) => {
  const { f, out } = await runOnce(
    t,
    'stat -c "%a %u" /tmp /run; f=$(mktemp) && echo made-in-tmp && stat -c "%u" "$f"; touch /run/x 2>/dev/null || echo run-not-writable',
    { uid: 1000, gid: 1000 },
  );
  t.is(f.sup.get('box/box').state, 'exited', out);
  const stdout = out
    .split('\n')
    .filter((l) => l.startsWith('stdout '))
    .join('\n');
  t.is(stdout, 'stdout 1777 0\nstdout 755 0\nstdout made-in-tmp\nstdout 1000\nstdout run-not-writable');
});

test('sandbox: keeps exactly the capabilities listed, as ambient caps of a non-root uid', async (t) => {
  const { out } = await runOnce(t, 'grep -E "^(CapEff|CapBnd|CapAmb)" /proc/self/status', {
    uid: 1000,
    gid: 1000,
    capabilityBoundingSet: ['CAP_NET_BIND_SERVICE'],
  });
  // CAP_NET_BIND_SERVICE is bit 10.
  t.regex(out, /CapEff:\s+0000000000000400/);
  t.regex(out, /CapBnd:\s+0000000000000400/);
  t.regex(out, /CapAmb:\s+0000000000000400/);
});

test('sandbox: declared devices the host has are bound in, a missing one is left out, undeclared ones are absent', async (t) => {
  // /dev/net/tun is on every host of ours (facts.md); /dev/mway-none is on none; /dev/kvm is
  // on the host but not declared, so bwrap's minimal /dev must not have it.
  const { f, out } = await runOnce(
    t,
    'for d in /dev/net/tun /dev/mway-none /dev/kvm; do if [ -c $d ]; then echo "has $d"; else echo "no $d"; fi; done',
    { devices: ['/dev/net/tun', '/dev/mway-none'] },
  );
  t.is(f.sup.get('box/box').state, 'exited', out);
  const stdout = out
    .split('\n')
    .filter((l) => l.startsWith('stdout '))
    .join('\n');
  t.is(stdout, 'stdout has /dev/net/tun\nstdout no /dev/mway-none\nstdout no /dev/kvm');
});

test('sandbox: only its own data directories are bound in, and the root is read-only', async (t) => {
  const dir = await (await import('../../helpers.ts')).tempDir(t);
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
  const { f } = await runOnce(t, 'exit 0', { memoryMax: 64 << 20, tasksMax: 64, cpuWeight: 50 });
  const info = f.sup.get('box/box').info();
  // A service cgroup has memory.max, pids.max and cpu.weight only for the controllers its
  // parent delegates (cgroup.subtree_control): on this host none, in the QEMU guest all three.
  const { readFile } = await import('node:fs/promises');
  const delegated =
    f.cgroupRoot === undefined
      ? []
      : (await readFile(join(f.cgroupRoot, 'cgroup.subtree_control'), 'utf8')).split(/\s+/);
  const files = [
    ['cpu', 'cpu.weight'],
    ['memory', 'memory.max'],
    ['pids', 'pids.max'],
  ] as const;
  const expected = files.filter(([controller]) => !delegated.includes(controller)).map(([, file]) => file);
  t.deepEqual([...info.limitsNotApplied].sort(), expected);
  if (expected.length > 0) t.regex(logText(f, 'box/box'), /limits not applied/);
  else t.notRegex(logText(f, 'box/box'), /limits not applied/);
});

test('sandbox: writableRoot ephemeral — writes anywhere in the root work, stay out of the root, and are gone at the next start', async (t) => {
  const marker = `/etc/mway-writable-${process.pid}`;
  const script = `cat ${marker} 2>/dev/null || echo fresh; echo written > ${marker} && cat ${marker}; mkdir -p /var/cache/app && touch /var/cache/app/x && echo cache-ok`;
  const f = await fixture(t);
  f.sup.add(spec('box/box', script, { restart: 'no', writableRoot: 'ephemeral' }));
  for (let i = 0; i < 2; i++) {
    await f.sup.startAll();
    await until(() => ['exited', 'failed'].includes(f.sup.get('box/box').state));
    t.is(f.sup.get('box/box').state, 'exited', logText(f, 'box/box'));
  }
  const stdout = logText(f, 'box/box')
    .split('\n')
    .filter((l) => l.startsWith('stdout '))
    .join('\n');
  // Both runs found no marker: the first run's write did not outlive it.
  t.is(
    stdout,
    'stdout fresh\nstdout written\nstdout cache-ok\nstdout fresh\nstdout written\nstdout cache-ok',
  );
  // Nor did it reach the host's root under the overlay.
  const { existsSync } = await import('node:fs');
  t.false(existsSync(marker));
  t.false(existsSync('/var/cache/app/x'));
});

test('sandbox: writableRoot persistent — writes anywhere in the root are kept in its upper across starts, never reach the root, and a new payload starts afresh', async (t) => {
  const { persistentRoot } = await import('../../../agent/layers/writable-root.ts');
  const { existsSync } = await import('node:fs');
  const { readFile } = await import('node:fs/promises');
  const marker = `/etc/mway-persistent-${process.pid}`;
  const script = `cat ${marker} 2>/dev/null || echo fresh; echo "run $(cat /proc/sys/kernel/random/uuid)" > ${marker} && echo wrote`;
  const f = await fixture(t);
  const data = join(f.dir, 'data');
  const first = await persistentRoot(data, 'box', 'box', 'aa'.repeat(32));
  t.false(first.reset);
  f.sup.add(
    spec('box/box', script, { restart: 'no', writableRoot: 'persistent', persistentRoot: first.dir }),
  );
  const once = async () => {
    await f.sup.startAll();
    await until(() => ['exited', 'failed'].includes(f.sup.get('box/box').state));
    t.is(f.sup.get('box/box').state, 'exited', logText(f, 'box/box'));
  };
  await once();
  const upperFile = join(first.dir, 'upper', marker);
  const written = await readFile(upperFile, 'utf8');
  t.regex(written, /^run [0-9a-f-]{36}\n$/);
  await once();
  const stdout = () =>
    logText(f, 'box/box')
      .split('\n')
      .filter((l) => l.startsWith('stdout '));
  // The second run read what the first wrote.
  t.deepEqual(stdout(), ['stdout fresh', 'stdout wrote', `stdout ${written.trim()}`, 'stdout wrote']);
  t.false(existsSync(marker));
  // The same payload keeps the upper; another payload removes it.
  t.false((await persistentRoot(data, 'box', 'box', 'aa'.repeat(32))).reset);
  t.true(existsSync(upperFile));
  const next = await persistentRoot(data, 'box', 'box', 'bb'.repeat(32));
  t.true(next.reset);
  t.is(next.dir, first.dir);
  t.false(existsSync(upperFile));
  await once();
  t.is(stdout()[4], 'stdout fresh');
  // roots/<layer>/ is the agent's, outside the layer's private data: no service reaches the upper.
  const { stat } = await import('node:fs/promises');
  t.is(first.dir, join(data, 'roots', 'box', 'box'));
  for (const d of [join(data, 'roots'), join(data, 'roots', 'box')]) {
    const st = await stat(d);
    t.is(st.uid, 0);
    t.is(st.mode & 0o777, 0o700);
  }
  t.false(existsSync(join(data, 'secure', 'box')));
});
