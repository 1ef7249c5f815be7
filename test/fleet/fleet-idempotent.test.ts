// What Salt's state.apply users expect, through signed commands to a real agent (namespace
// mode): installing the layer that is already active reports `unchanged` and leaves its
// service running as it was; removing an absent layer succeeds with `absent`; `mway service
// disable|enable` decide whether a service starts at boot, hold across a reboot of the agent,
// and report `unchanged` when applied twice. jq (nobody here wrote it) reads the agent's file.
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { newIdentity } from '../../keys/index.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut, until } from '../helpers.ts';
import { packTestLayer, startAgentPeer, startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

interface Report {
  peers: Array<{ outcome: string; code?: string; output?: Record<string, unknown> }>;
}

test('a second apply is unchanged: same layer, absent layer, service enable/disable across reboots', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(f.dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const a = await startAgentPeer(t, f, p, p.p1, user);
  const admin = await f.as(p.admin, 'admin', 120_000);
  const json = async (...args: string[]) => {
    const r = await admin(...args, '--peer', 'p1', '--json', '--static');
    return { exitCode: r.exitCode, peer: (jsonOut(r.stdout) as Report).peers[0], stderr: r.stderr };
  };
  const service = async () =>
    (await json('service', 'status', 'hello/web')).peer?.output as {
      state: string;
      pid?: number;
      since: string;
    };
  const mwl = await packTestLayer(f.dir, 'hello', user, [{ name: 'web', execStart: ['/bin/sleep', '1000'] }]);

  const first = await json('install', mwl);
  t.is(first.exitCode, 0, first.stderr);
  t.like(first.peer?.output, { name: 'hello', state: 'active' });
  t.is(first.peer?.output?.change, undefined);
  await until('hello/web running', async () => (await service()).state === 'running');
  const before = await service();

  // The same file again: unchanged, and the running service was not touched.
  const again = await admin('install', '--peer', 'p1', mwl);
  t.is(again.exitCode, 0, again.stderr);
  t.regex(again.stdout, /^p1 +ok +active \(unchanged\)$/m);
  const second = await json('install', mwl);
  t.like(second.peer?.output, { name: 'hello', state: 'active', change: 'unchanged' });
  t.deepEqual(await service(), before);

  // disable: still running now (it only decides boot), off after a reboot, until enabled.
  const off = await json('service', 'disable', 'hello/web');
  t.is(off.exitCode, 0, off.stderr);
  t.deepEqual(off.peer?.output, { service: 'hello/web', state: 'disabled', change: 'changed' });
  t.like((await json('service', 'disable', 'hello/web')).peer?.output, {
    state: 'disabled',
    change: 'unchanged',
  });
  t.regex(
    (await admin('service', '--peer', 'p1', 'disable', 'hello/web')).stdout,
    /p1 +ok +disabled \(unchanged\)/,
  );
  const file = join(a.root, 'data', 'services', 'enablement.json');
  t.is(
    (await execa('jq', ['-c', '.', file], { timeout: 10_000 })).stdout,
    '{"version":1,"disabled":["hello/web"]}',
  );
  t.is((await service()).state, 'running');
  await a.restart(/boot done/);
  t.is((await service()).state, 'stopped', 'a disabled service does not start at boot');
  // An explicit start still starts it (systemd's semantics); enable makes it start at boot again.
  t.is((await json('service', 'start', 'hello/web')).exitCode, 0);
  t.is((await service()).state, 'running');
  t.like((await json('service', 'enable', 'hello/web')).peer?.output, {
    state: 'enabled',
    change: 'changed',
  });
  t.like((await json('service', 'enable', 'hello/web')).peer?.output, { change: 'unchanged' });
  await a.restart(/boot done/);
  await until('hello/web running after the reboot', async () => (await service()).state === 'running');
  const unknown = await json('service', 'disable', 'nosuch');
  t.is(unknown.exitCode, 1);
  t.like(unknown.peer, { outcome: 'failed', code: 'E_SERVICE_UNKNOWN' });

  // remove: removed, then absent (success), and never there at all is absent too.
  t.like((await json('remove', 'hello')).peer?.output, { layer: 'hello', state: 'removed' });
  const gone = await json('remove', 'hello');
  t.is(gone.exitCode, 0, gone.stderr);
  t.like(gone.peer, { outcome: 'ok', output: { layer: 'hello', state: 'absent', change: 'unchanged' } });
  t.regex((await admin('remove', '--peer', 'p1', 'nosuch')).stdout, /^p1 +ok +absent \(unchanged\)$/m);
});
