// The agent in namespace mode serving its API on a real dbus-daemon, driven with
// `milkyway-agent ctl` (the D-Bus plumbing itself is tested in dbus-agent.test.ts and dbus-policy.test.ts).

import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

test('namespace mode: the agent serves status on D-Bus and powers off on request', async (t) => {
  const dir = await tempDir(t, 'mway-dbus-');
  await chmod(dir, 0o755);
  const configFile = join(dir, 'bus.conf');
  const address = await writeBusConfig({ configFile, socketPath: join(dir, 'bus') });
  const daemon = await startBusDaemon({ configFile });
  t.teardown(() => daemon.stop());
  const r = await makeRoot(t, await makePki(t), { config: { dbus: { address } } });
  const a = startAgent(t, r);
  await a.waitFor(/serving org\.milkyway\.Agent1/);
  const s = await cli('milkyway-agent', ['ctl', 'status', '--json', '--bus', address]);
  t.is(s.exitCode, 0, s.stderr);
  const status = jsonOut(s.stdout) as { mode: string; secureConfig: { verified: boolean }; state: string };
  t.is(status.mode, 'namespace');
  t.true(status.secureConfig.verified);
  t.is(status.state, 'running');
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
