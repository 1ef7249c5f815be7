// The real agent (namespace mode: `unshare --pid --fork --mount --mount-proc milkyway-agent
// --root … --config …` with a `dbus` section) serving org.milkyway.Agent1 on a real
// dbus-daemon that loads the agent's bus policy, called with dbus-send and with
// `milkyway-agent ctl`, as root and as nobody (uid 65534).

import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { type BusDaemon, startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { packLayer } from '../../../layers/pack.ts';
import { BINS, jsonOut, tempDir } from '../../helpers.ts';
import { type AgentRoot, makePki, makeRoot, type Pki, type RunningAgent, startAgent } from '../_namespace.ts';

const DEST = ['--system', '--print-reply', '--dest=org.milkyway.Agent1', '/org/milkyway/Agent1'];
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

interface Bus {
  daemon: BusDaemon;
  address: string;
  configFile: string;
}

/** A dbus-daemon with the system bus's default policy plus `policies` (default: ours). */
async function startBus(t: ExecutionContext, policies?: string[]): Promise<Bus> {
  const dir = await tempDir(t, 'mway-dbus-');
  await chmod(dir, 0o755); // nobody must reach the socket
  const configFile = join(dir, 'bus.conf');
  await writeBusConfig({
    configFile,
    socketPath: join(dir, 'bus'),
    ...(policies === undefined ? {} : { policies }),
  });
  const daemon = await startBusDaemon({ configFile });
  t.teardown(() => daemon.stop());
  return { daemon, address: daemon.address, configFile };
}

/** The real agent in namespace mode, serving its API on `bus`. */
async function agentOn(t: ExecutionContext, bus: Bus): Promise<{ agent: RunningAgent; root: AgentRoot }> {
  const root = await makeRoot(t, await makePki(t), { config: { dbus: { address: bus.address } } });
  const agent = startAgent(t, root);
  await agent.waitFor(/serving org\.milkyway\.Agent1/, 60_000);
  return { agent, root };
}

function dbusSend(address: string, args: string[], asNobody = false) {
  const env = { DBUS_SYSTEM_BUS_ADDRESS: address };
  const [file, ...rest] = asNobody
    ? ['setpriv', ...NOBODY, 'dbus-send', ...DEST, ...args]
    : ['dbus-send', ...DEST, ...args];
  return execa(file as string, rest, { reject: false, timeout: 30_000, env });
}

/** The JSON document of a `dbus-send --print-reply` reply holding one string. */
function replyJson(stdout: string): unknown {
  const m = /^\s+string "(.*)"\s*$/ms.exec(stdout);
  if (m === null) throw new Error(`no string in reply: ${stdout}`);
  return JSON.parse(m[1] as string);
}

/** A signed app layer with one service `main` running `script` as nobody (layers/ packLayer). */
async function appLayer(
  t: ExecutionContext,
  pki: Pki,
  name: string,
  script: string,
  out: string,
): Promise<void> {
  const dir = await tempDir(t, 'mway-dbus-layer-');
  await mkdir(join(dir, 'rootfs'));
  await writeFile(join(dir, 'rootfs', '.keep'), '');
  const manifest = {
    name,
    version: '1.0.0',
    kind: 'app',
    dependencies: [],
    data: { private: true, common: false, groups: [] },
    services: [{ name: 'main', execStart: ['/bin/sh', '-c', script], user: 'nobody', privateNetwork: true }],
  };
  await writeFile(join(dir, 'layer.json'), JSON.stringify(manifest));
  await packLayer({
    dir,
    key: await readPrivateKey(pki.userKeyPath),
    chain: await readCertificates(pki.userCertPath),
    out,
    sourceDateEpoch: 1_700_000_000,
  });
}

function ctl(address: string, args: string[], asNobody = false) {
  const argv = [process.execPath, BINS['milkyway-agent'], 'ctl', ...args, '--bus', address];
  const [file, ...rest] = asNobody ? ['setpriv', ...NOBODY, ...argv] : argv;
  return execa(file as string, rest, { reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });
}

// One agent for the tests that only read or are refused (they change nothing). ava does
// not allow t.teardown() in hooks, so the hook collects the cleanups and after.always runs them.
let shared: { bus: Bus; agent: RunningAgent } | undefined;
const sharedCleanups: (() => unknown)[] = [];
test.before(async (t) => {
  const ctx = { teardown: (fn: () => unknown) => sharedCleanups.push(fn) } as unknown as ExecutionContext;
  t.timeout(120_000);
  const bus = await startBus(ctx);
  const { agent } = await agentOn(ctx, bus);
  shared = { bus, agent };
});
test.after.always(async () => {
  for (const fn of sharedCleanups.reverse()) await fn();
});

function sharedBus(): string {
  if (shared === undefined) throw new Error('no shared agent');
  return shared.bus.address;
}

test('dbus-send reads the real agent: status, layers, services; errors carry the agent codes', async (t) => {
  const address = sharedBus();
  const status = await dbusSend(address, ['org.milkyway.Agent1.GetStatus']);
  t.is(status.exitCode, 0, status.stderr);
  t.like(replyJson(status.stdout), { mode: 'namespace', state: 'running', secureConfig: { verified: true } });
  const layers = await dbusSend(address, ['org.milkyway.Agent1.ListLayers']);
  t.deepEqual(replyJson(layers.stdout), []);
  const services = await dbusSend(address, ['org.milkyway.Agent1.ListServices']);
  t.deepEqual(replyJson(services.stdout), []);

  const get = await dbusSend(address, ['org.milkyway.Agent1.GetService', 'string:web/main']);
  t.is(get.exitCode, 1);
  t.regex(get.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_SERVICE_UNKNOWN: .*web\/main/m);
  const start = await dbusSend(address, ['org.milkyway.Agent1.StartService', 'string:web/main']);
  t.regex(start.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_SERVICE_UNKNOWN: /m);
  const logs = await dbusSend(address, ['org.milkyway.Agent1.GetLogs', 'string:web/main', 'uint32:10']);
  t.regex(logs.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_SERVICE_UNKNOWN: /m);
  const remove = await dbusSend(address, ['org.milkyway.Agent1.RemoveLayer', 'string:web']);
  t.regex(remove.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_LAYER_[A-Z_]+: /m);
  const relative = await dbusSend(address, ['org.milkyway.Agent1.InstallLayer', 'string:junk.mwl']);
  t.regex(relative.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_DBUS_BAD_ARGUMENT: /m);
  const types = await dbusSend(address, ['org.milkyway.Agent1.StopService', 'uint32:1']);
  t.regex(types.stderr, /^Error org\.freedesktop\.DBus\.Error\.InvalidArgs: /m);
  const xml = await dbusSend(address, ['org.freedesktop.DBus.Introspectable.Introspect']);
  t.regex(xml.stdout, /<method name="InstallLayer">/);
});

test('InstallLayer of a file that is not a layer fails with the agent code, nothing installed', async (t) => {
  const address = sharedBus();
  const dir = await tempDir(t);
  const junk = join(dir, 'junk.mwl');
  await writeFile(junk, 'not a layer');
  const install = await dbusSend(address, ['org.milkyway.Agent1.InstallLayer', `string:${junk}`]);
  t.is(install.exitCode, 1);
  t.regex(install.stderr, /^Error org\.milkyway\.Agent1\.Error\.E_[A-Z_]+: /m);
  // E_INTERNAL would mean the agent hit a bug, not a refusal; its log has the stack.
  const why = (shared?.agent.output() ?? '').split('\n').filter((l) => /InstallLayer/.test(l));
  t.notRegex(install.stderr, /E_INTERNAL/, why.join('\n'));
  const layers = await dbusSend(address, ['org.milkyway.Agent1.ListLayers']);
  t.deepEqual(replyJson(layers.stdout), []);
});

test('a non-root caller is refused control by the bus policy but may read', async (t) => {
  const address = sharedBus();
  for (const [m, arg] of [
    ['StartService', 'string:web/main'],
    ['StopService', 'string:web/main'],
    ['RestartService', 'string:web/main'],
    ['InstallLayer', 'string:/tmp/x.mwl'],
    ['RemoveLayer', 'string:web'],
  ] as const) {
    const r = await dbusSend(address, [`org.milkyway.Agent1.${m}`, arg], true);
    t.is(r.exitCode, 1, m);
    t.regex(r.stderr, /^Error org\.freedesktop\.DBus\.Error\.AccessDenied: Rejected send message/m, m);
  }
  for (const m of ['GetStatus', 'ListLayers', 'ListServices']) {
    const r = await dbusSend(address, [`org.milkyway.Agent1.${m}`], true);
    t.is(r.exitCode, 0, `${m}: ${r.stderr}`);
  }
  // Get* reach the agent (which answers that there is no such service), not a policy refusal.
  const get = await dbusSend(address, ['org.milkyway.Agent1.GetService', 'string:web/main'], true);
  t.regex(get.stderr, /E_SERVICE_UNKNOWN/);

  const denied = await ctl(address, ['stop', 'web/main'], true);
  t.is(denied.exitCode, 4);
  t.is(
    denied.stderr.trim(),
    'milkyway-agent: E_DBUS_ACCESS_DENIED: Permission denied: the bus policy does not allow you to call StopService',
  );
  const list = await ctl(address, ['list', '--json'], true);
  t.is(list.exitCode, 0, list.stderr);
  t.deepEqual(jsonOut(list.stdout), { layers: [], services: [] });
});

test('ctl against the real agent: output, --json, exit codes and one-line errors', async (t) => {
  const address = sharedBus();
  const status = await ctl(address, ['status']);
  t.is(status.exitCode, 0, status.stderr);
  t.regex(status.stdout, /^mode: namespace$/m);
  t.regex(status.stdout, /^state: running$/m);
  const list = await ctl(address, ['list']);
  t.is(list.stdout.trim(), 'LAYERS\n(none)\n\nSERVICES\n(none)');
  const unknown = await ctl(address, ['restart', 'web/main']);
  t.is(unknown.exitCode, 1);
  t.regex(unknown.stderr, /^milkyway-agent: E_SERVICE_UNKNOWN: [^\n]*web\/main[^\n]*$/);
  const json = await ctl(address, ['logs', 'nope', '--json']);
  t.is(json.exitCode, 1);
  t.is((jsonOut(json.stdout) as { error: { code: string } }).error.code, 'E_SERVICE_UNKNOWN');
  const usage = await ctl(address, ['logs', 'x', '-n', 'many']);
  t.is(usage.exitCode, 2);
  const bad = await ctl(address, ['start', '../x']);
  t.regex(bad.stderr, /^milkyway-agent: E_DBUS_BAD_ARGUMENT: Invalid service name: "\.\.\/x"$/);
});

test('without the policy file the real agent itself refuses control to non-root', async (t) => {
  const dir = await tempDir(t, 'mway-dbus-policy-');
  await chmod(dir, 0o755);
  const open = join(dir, 'open.conf');
  // Lets root own the name and everyone send anything to it: only the agent's own check remains.
  await writeFile(
    open,
    '<busconfig><policy user="root"><allow own="org.milkyway.Agent1"/></policy>' +
      '<policy context="default"><allow send_destination="org.milkyway.Agent1"/></policy></busconfig>',
  );
  const bus = await startBus(t, [open]);
  const { agent } = await agentOn(t, bus);
  const r = await dbusSend(bus.address, ['org.milkyway.Agent1.StopService', 'string:web/main'], true);
  t.is(r.exitCode, 1);
  t.regex(
    r.stderr,
    /^Error org\.milkyway\.Agent1\.Error\.E_DBUS_ACCESS_DENIED: StopService is only allowed to root \(caller uid 65534\)/m,
  );
  await agent.waitFor(/refused StopService from uid 65534/);
  const c = await ctl(bus.address, ['remove', 'web'], true);
  t.is(c.exitCode, 4, c.stderr);
  t.regex(c.stderr, /E_DBUS_ACCESS_DENIED: RemoveLayer is only allowed to root/);
  // Root still gets through to the agent (which has no such service).
  const root = await dbusSend(bus.address, ['org.milkyway.Agent1.StopService', 'string:web/main']);
  t.regex(root.stderr, /E_SERVICE_UNKNOWN/);
});

test('a second agent on the same bus does not take the name from the first', async (t) => {
  const bus = await startBus(t);
  const first = await agentOn(t, bus);
  const second = startAgent(
    t,
    await makeRoot(t, await makePki(t), { config: { dbus: { address: bus.address } } }),
  );
  await second.waitFor(/cannot serve the D-Bus API: .*already owned/, 60_000);
  // The first still answers: it has its own boot time.
  const s = await ctl(bus.address, ['status', '--json']);
  t.is(s.exitCode, 0, s.stderr);
  t.regex(first.agent.output(), /serving org\.milkyway\.Agent1/);
});

test('the real agent takes its name back after the bus daemon restarts', async (t) => {
  const bus = await startBus(t);
  const { agent } = await agentOn(t, bus);
  await bus.daemon.stop();
  t.is((await ctl(bus.address, ['status'])).exitCode, 3, 'no bus: unreachable');
  const again = await startBusDaemon({ configFile: bus.configFile });
  t.teardown(() => again.stop());
  await agent.waitFor(/D-Bus: serving org\.milkyway\.Agent1 again/, 30_000);
  const s = await ctl(again.address, ['status', '--json']);
  t.is(s.exitCode, 0, s.stderr);
  t.regex(agent.output(), /D-Bus: lost the bus/);
});

test('ctl exits 3 when no agent owns the name', async (t) => {
  const bus = await startBus(t);
  const r = await ctl(bus.address, ['list']);
  t.is(r.exitCode, 3);
  t.is(
    r.stderr.trim(),
    'milkyway-agent: E_DBUS_UNREACHABLE: No agent on the bus: org.milkyway.Agent1 is not owned by anyone',
  );
});

// Keep the helper honest: the policy file the image installs is the one the bus loaded.
test('the test bus loads agent/dbus/org.milkyway.Agent1.conf', async (t) => {
  if (shared === undefined) return t.fail('no shared agent');
  const text = await readFile(shared.bus.configFile, 'utf8');
  t.regex(text, /<include>[^<]*agent\/dbus\/org\.milkyway\.Agent1\.conf<\/include>/);
});

test('root controls a real layer service over D-Bus; ctl watch sees the signals', async (t) => {
  t.timeout(240_000);
  const bus = await startBus(t);
  const pki = await makePki(t);
  const root = await makeRoot(t, pki, { config: { dbus: { address: bus.address } } });
  await appLayer(t, pki, 'web', 'echo hello-from-web; exec sleep 600', join(root.root, 'layers', 'web.mwl'));
  const agent = startAgent(t, root);
  await agent.waitFor(/serving org\.milkyway\.Agent1/, 90_000);
  const address = bus.address;
  const state = async (): Promise<unknown> =>
    (
      replyJson((await dbusSend(address, ['org.milkyway.Agent1.GetService', 'string:web/main'])).stdout) as {
        state: string;
      }
    ).state;
  t.is(await state(), 'running', agent.output().slice(-2000));

  const watch = execa(
    process.execPath,
    [BINS['milkyway-agent'], 'ctl', 'watch', '--json', '--timeout', '200', '--bus', address],
    { reject: false, timeout: 220_000 },
  );
  t.teardown(() => {
    watch.kill('SIGKILL');
  });
  let seen = '';
  watch.stdout?.on('data', (d: Buffer) => {
    seen += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ctl watch did not subscribe')), 30_000);
    watch.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('watching')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });

  const stop = await dbusSend(address, ['org.milkyway.Agent1.StopService', 'string:web/main']);
  t.is(stop.exitCode, 0, stop.stderr);
  t.is(await state(), 'stopped');
  const refused = await ctl(address, ['start', 'web/main'], true);
  t.is(refused.exitCode, 4);
  t.is(await state(), 'stopped', 'nobody could not start it');
  const start = await ctl(address, ['start', 'web/main']);
  t.is(start.exitCode, 0, start.stderr);
  t.is(await state(), 'running');
  const restart = await ctl(address, ['restart', 'web/main', '--json']);
  t.is(restart.exitCode, 0, restart.stderr);
  t.is(await state(), 'running');
  const logs = await ctl(address, ['logs', 'web/main']);
  t.is(logs.exitCode, 0, logs.stderr);
  t.regex(logs.stdout, /stdout hello-from-web/);
  const nobodyLogs = await dbusSend(
    address,
    ['org.milkyway.Agent1.GetLogs', 'string:web/main', 'uint32:5'],
    true,
  );
  t.is(nobodyLogs.exitCode, 0, nobodyLogs.stderr);

  const dir = await tempDir(t);
  const db = join(dir, 'db.mwl');
  await appLayer(t, pki, 'db', 'exec sleep 600', db);
  const install = await ctl(address, ['install', db, '--json']);
  t.is(install.exitCode, 0, install.stderr);
  t.like(jsonOut(install.stdout), { name: 'db', state: 'active' });
  const list = await ctl(address, ['list', '--json']);
  t.deepEqual((jsonOut(list.stdout) as { layers: { name: string }[] }).layers.map((l) => l.name).sort(), [
    'db',
    'web',
  ]);
  const remove = await dbusSend(address, ['org.milkyway.Agent1.RemoveLayer', 'string:db']);
  t.is(remove.exitCode, 0, remove.stderr);

  // Signals arrive asynchronously: wait (bounded) for the last one expected.
  for (let i = 0; i < 100 && !/"LayerChanged","name":"db","value":"removed"/.test(seen); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  watch.kill('SIGTERM');
  const watched = await watch;
  const signals = String(watched.stdout)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => jsonOut(l) as { member: string; name: string; value: string });
  const got = signals.map((s) => `${s.member} ${s.name} ${s.value}`);
  t.true(got.includes('ServiceChanged web/main stopped'), got.join('\n'));
  t.true(got.includes('ServiceChanged web/main running'), got.join('\n'));
  t.true(got.includes('LayerChanged db installed'), got.join('\n'));
  t.true(got.includes('LayerChanged db removed'), got.join('\n'));
  t.true(
    got.indexOf('ServiceChanged web/main stopped') < got.lastIndexOf('ServiceChanged web/main running'),
    'stopped before running again',
  );
});

test('gdbus and busctl read the introspection data and walk down to the object', async (t) => {
  const address = sharedBus();
  const g = await execa(
    'gdbus',
    [
      'introspect',
      '--address',
      address,
      '--dest',
      'org.milkyway.Agent1',
      '--object-path',
      '/org/milkyway/Agent1',
    ],
    { reject: false, timeout: 30_000 },
  );
  t.is(g.exitCode, 0, g.stderr);
  t.regex(g.stdout, /GetLogs\(in {2}s name,\s+in {2}u lines,\s+out s json\);/);
  t.regex(g.stdout, /InstallLayer\(in {2}s path,\s+out s json\);/);
  t.regex(g.stdout, /signals:\s+ServiceChanged\(s name,\s+s state\);/);
  const call = await execa(
    'gdbus',
    [
      'call',
      '--address',
      address,
      '--dest',
      'org.milkyway.Agent1',
      '--object-path',
      '/org/milkyway/Agent1',
      '--method',
      'org.milkyway.Agent1.ListLayers',
    ],
    { reject: false, timeout: 30_000 },
  );
  t.is(call.stdout.trim(), "('[]',)", call.stderr);
  const tree = await execa('busctl', ['--address', address, 'tree', 'org.milkyway.Agent1'], {
    reject: false,
    timeout: 30_000,
  });
  t.is(tree.exitCode, 0, tree.stderr);
  t.regex(tree.stdout, /\/org\/milkyway\/Agent1/);
});
