// The bus policy file and the method table must agree: every read method is open to
// everyone, no control method is.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POLICY_FILE, startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { BUS_NAME, INTERFACE, METHODS } from '../../../agent/dbus/dbus-names.ts';
import { tempDir } from '../../helpers.ts';

test('the policy opens exactly the read methods to everyone', async (t) => {
  const xml = await readFile(POLICY_FILE, 'utf8');
  const def = /<policy context="default">([\s\S]*?)<\/policy>/.exec(xml)?.[1] ?? '';
  const open = [
    ...def.matchAll(/<allow send_destination="([^"]+)" send_interface="([^"]+)" send_member="([^"]+)"\/>/g),
  ]
    .filter((m) => m[1] === BUS_NAME && m[2] === INTERFACE)
    .map((m) => m[3])
    .sort();
  const reads = Object.entries(METHODS)
    .filter(([, s]) => !s.control)
    .map(([n]) => n)
    .sort();
  t.deepEqual(open, reads);
  t.regex(def, new RegExp(`<deny send_destination="${BUS_NAME.replace(/\./g, '\\.')}"/>`));
  t.regex(def, /<deny own="org\.milkyway\.Agent1"\/>/);
  const root = /<policy user="root">([\s\S]*?)<\/policy>/.exec(xml)?.[1] ?? '';
  t.regex(root, /<allow own="org\.milkyway\.Agent1"\/>/);
  t.regex(root, /<allow send_destination="org\.milkyway\.Agent1"\/>/);
});

test('startBusDaemon reports a config dbus-daemon rejects, with its reason', async (t) => {
  const dir = await tempDir(t);
  const bad = join(dir, 'bad.conf');
  await writeBusConfig({
    configFile: bad,
    socketPath: join(dir, 'bus'),
    policies: [join(dir, 'missing.conf')],
  });
  const e = await t.throwsAsync(startBusDaemon({ configFile: bad }));
  t.is((e as { code?: string }).code, 'E_DBUS_DAEMON');
  t.regex(e?.message ?? '', /dbus-daemon exited before it was ready: .*missing\.conf/);
});
