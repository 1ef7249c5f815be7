// The D-Bus plumbing on a real dbus-daemon (Debian `dbus`) with the agent's real policy
// file, driven by dbus-send and `milkyway-agent ctl`: name ownership, policy and the
// agent's own uid check, error names, reconnect. The AgentApi here is a small in-memory
// one; test/agent/dbus-agent.test.ts drives the real agent.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MilkyWayError } from '../../common/error.ts';
import type { LayerInfo, LogLine, ServiceInfo } from '../../agent/agent-api.ts';
import type { AgentChange, DbusAgentApi } from '../../agent/dbus-api.ts';
import { type BusDaemon, startBusDaemon, writeBusConfig } from '../../agent/dbus-daemon.ts';
import { startDbusService } from '../../agent/dbus-service.ts';
import { BINS, tempDir } from '../helpers.ts';

const DEST = ['--system', '--print-reply', '--dest=org.milkyway.Agent1', '/org/milkyway/Agent1'];
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const SINCE = '2026-01-01T00:00:00.000Z';

interface Bus {
  daemon: BusDaemon;
  dir: string;
  configFile: string;
  socketPath: string;
}

async function bus(t: ExecutionContext, policies?: string[]): Promise<Bus> {
  const dir = await tempDir(t, 'mway-dbus-');
  await chmod(dir, 0o755); // nobody must reach the socket
  const configFile = join(dir, 'bus.conf');
  const socketPath = join(dir, 'bus');
  await writeBusConfig({ configFile, socketPath, ...(policies === undefined ? {} : { policies }) });
  const daemon = await startBusDaemon({ configFile });
  t.teardown(() => daemon.stop());
  return { daemon, dir, configFile, socketPath };
}

/** A tiny AgentApi that records what it was asked to do. */
function memoryApi() {
  const listeners = new Set<(c: AgentChange) => void>();
  const calls: string[] = [];
  const services = new Map<string, ServiceInfo>([
    ['web', { name: 'web', layer: 'web', state: 'running', restarts: 0, since: SINCE, limitsNotApplied: [] }],
  ]);
  const layer = (name: string, version: string): LayerInfo => ({
    name,
    version,
    kind: 'app',
    state: 'active',
    verity: 'userspace',
    signers: ['user'],
    services: [name],
  });
  const emit = (c: AgentChange) => {
    for (const l of listeners) l(c);
  };
  const known = (name: string) => {
    const s = services.get(name);
    if (s === undefined) throw new MilkyWayError('E_SERVICE_UNKNOWN', `No service named ${name}`);
    return s;
  };
  const api: DbusAgentApi = {
    status: async () => ({
      state: 'running',
      mode: 'namespace',
      bootedAt: SINCE,
      secureConfig: { verified: true },
      layers: { active: 1, refused: 0 },
      services: { total: services.size, running: 1, failed: 0 },
      warnings: [],
    }),
    listLayers: async () => [layer('web', '1.2.3')],
    listServices: async () => [...services.values()],
    getService: async (name) => known(name),
    startService: async (name) => {
      calls.push(`start ${name}`);
      known(name).state = 'running';
      emit({ kind: 'service', name, state: 'running' });
    },
    stopService: async (name) => {
      calls.push(`stop ${name}`);
      known(name).state = 'stopped';
      emit({ kind: 'service', name, state: 'stopped' });
    },
    restartService: async (name) => {
      calls.push(`restart ${name}`);
      known(name);
    },
    logs: async (name, { lines }) => {
      known(name);
      return Array.from(
        { length: Math.min(lines ?? 3, 3) },
        (_, i): LogLine => ({ time: `t${i}`, stream: 'stdout', text: `l${i}` }),
      );
    },
    installLayer: async (path) => {
      calls.push(`install ${path}`);
      emit({ kind: 'layer', name: 'db', event: 'installed' });
      return layer('db', '0.1.0');
    },
    removeLayer: async (name) => {
      calls.push(`remove ${name}`);
      if (name !== 'web') throw new MilkyWayError('E_LAYER_UNKNOWN', `No layer named ${name}`);
    },
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return { api, calls };
}

async function serve(t: ExecutionContext, b: Bus) {
  const { api, calls } = memoryApi();
  const log: string[] = [];
  const service = await startDbusService({
    api,
    address: b.daemon.address,
    log: (l, m) => log.push(`${l} ${m}`),
  });
  t.teardown(() => service.stop());
  return { service, calls, log };
}

function dbusSend(b: Bus, args: string[], asNobody = false) {
  const env = { DBUS_SYSTEM_BUS_ADDRESS: b.daemon.address };
  const cmd = asNobody
    ? ['setpriv', [...NOBODY, 'dbus-send', ...DEST, ...args]]
    : ['dbus-send', [...DEST, ...args]];
  return execa(cmd[0] as string, cmd[1] as string[], { reject: false, timeout: 20_000, env });
}

function ctl(b: Bus, args: string[], asNobody = false) {
  const argv = [process.execPath, BINS['milkyway-agent'], 'ctl', ...args, '--bus', b.daemon.address];
  const [file, ...rest] = asNobody ? ['setpriv', ...NOBODY, ...argv] : argv;
  return execa(file as string, rest, { reject: false, timeout: 30_000, env: { NO_COLOR: '1' } });
}

test('dbus-send reads layers and services as JSON; root controls a service', async (t) => {
  const b = await bus(t);
  const { calls } = await serve(t, b);
  const layers = await dbusSend(b, ['org.milkyway.Agent1.ListLayers']);
  t.is(layers.exitCode, 0, layers.stderr);
  const json = /string "(.*)"\s*$/s.exec(layers.stdout)?.[1];
  t.like(JSON.parse(json ?? 'null'), [{ name: 'web', version: '1.2.3', kind: 'app' }]);
  const stop = await dbusSend(b, ['org.milkyway.Agent1.StopService', 'string:web']);
  t.is(stop.exitCode, 0, stop.stderr);
  t.deepEqual(calls, ['stop web']);
});

test('an AgentApi error reaches dbus-send as org.milkyway.Agent1.Error.<code>', async (t) => {
  const b = await bus(t);
  await serve(t, b);
  const r = await dbusSend(b, ['org.milkyway.Agent1.GetService', 'string:nope']);
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /Error org\.milkyway\.Agent1\.Error\.E_SERVICE_UNKNOWN: No service named nope/);
  const bad = await dbusSend(b, ['org.milkyway.Agent1.StartService', 'string:../etc']);
  t.regex(bad.stderr, /Error org\.milkyway\.Agent1\.Error\.E_DBUS_BAD_ARGUMENT/);
  const sig = await dbusSend(b, ['org.milkyway.Agent1.StartService', 'int32:3']);
  t.regex(sig.stderr, /org\.freedesktop\.DBus\.Error\.InvalidArgs/);
});

test('the bus policy refuses control to a non-root caller but lets it read', async (t) => {
  const b = await bus(t);
  const { calls } = await serve(t, b);
  for (const m of ['StartService', 'StopService', 'RestartService', 'RemoveLayer']) {
    const r = await dbusSend(b, [`org.milkyway.Agent1.${m}`, 'string:web'], true);
    t.is(r.exitCode, 1, m);
    t.regex(r.stderr, /org\.freedesktop\.DBus\.Error\.AccessDenied/, m);
  }
  const install = await dbusSend(b, ['org.milkyway.Agent1.InstallLayer', 'string:/tmp/x.mwl'], true);
  t.regex(install.stderr, /AccessDenied/);
  t.deepEqual(calls, [], 'no control call reached the agent');
  for (const m of ['ListLayers', 'ListServices', 'GetStatus']) {
    const r = await dbusSend(b, [`org.milkyway.Agent1.${m}`], true);
    t.is(r.exitCode, 0, `${m}: ${r.stderr}`);
  }
  const one = await dbusSend(b, ['org.milkyway.Agent1.GetService', 'string:web'], true);
  t.is(one.exitCode, 0, one.stderr);
  const logs = await dbusSend(b, ['org.milkyway.Agent1.GetLogs', 'string:web', 'uint32:2'], true);
  t.is(logs.exitCode, 0, logs.stderr);
});

test('without the policy file the agent itself still refuses control to non-root', async (t) => {
  // A policy that lets everyone send anything to the agent: only the agent's own check remains.
  const dir = await tempDir(t, 'mway-dbus-policy-');
  const open = join(dir, 'open.conf');
  await writeFile(
    open,
    '<busconfig><policy user="root"><allow own="org.milkyway.Agent1"/></policy>' +
      '<policy context="default"><allow send_destination="org.milkyway.Agent1"/></policy></busconfig>',
  );
  await chmod(dir, 0o755);
  const b = await bus(t, [open]);
  const { calls, log } = await serve(t, b);
  const r = await dbusSend(b, ['org.milkyway.Agent1.StopService', 'string:web'], true);
  t.is(r.exitCode, 1);
  t.regex(
    r.stderr,
    /org\.milkyway\.Agent1\.Error\.E_DBUS_ACCESS_DENIED: StopService is only allowed to root \(caller uid 65534\)/,
  );
  t.deepEqual(calls, []);
  t.true(log.some((l) => l.startsWith('warn D-Bus: refused StopService from uid 65534')));
});

test('a second service cannot take the name while the first owns it', async (t) => {
  const b = await bus(t);
  await serve(t, b);
  const { api } = memoryApi();
  await t.throwsAsync(startDbusService({ api, address: b.daemon.address, log: () => undefined }), {
    message: /already owned/,
  });
});

test('ctl: list, status, logs, control, exit codes, one-line errors', async (t) => {
  const b = await bus(t);
  const { calls } = await serve(t, b);
  const list = await ctl(b, ['list', '--json']);
  t.is(list.exitCode, 0, list.stderr);
  t.like(JSON.parse(list.stdout).layers, [{ name: 'web', version: '1.2.3', kind: 'app' }]);
  const human = await ctl(b, ['list']);
  t.regex(human.stdout, /SERVICES\nNAME\s+LAYER\s+STATE\s+RESTARTS\s+SINCE\nweb\s+web\s+running\s+0\s/);
  t.regex(
    human.stdout,
    /LAYERS\nNAME\s+VERSION\s+KIND\s+STATE\s+VERITY\s+SIGNERS\s+SERVICES\nweb\s+1\.2\.3\s+app\s+active\s+userspace\s+user\s+web\n/,
  );
  const st = await ctl(b, ['status', 'web']);
  t.regex(st.stdout, /^state: running$/m);
  const logs = await ctl(b, ['logs', 'web', '-n', '2']);
  t.is(logs.stdout.trim(), 't0 stdout l0\nt1 stdout l1');
  t.is((await ctl(b, ['restart', 'web'])).exitCode, 0);
  t.is((await ctl(b, ['install', 'some.mwl'])).exitCode, 0);
  t.deepEqual(calls, ['restart web', `install ${join(process.cwd(), 'some.mwl')}`]);

  const unknown = await ctl(b, ['stop', 'nope']);
  t.is(unknown.exitCode, 1);
  t.is(unknown.stderr.trim(), 'milkyway-agent: E_SERVICE_UNKNOWN: No service named nope');
  const denied = await ctl(b, ['remove', 'web'], true);
  t.is(denied.exitCode, 4, denied.stderr);
  t.regex(denied.stderr, /^milkyway-agent: E_DBUS_ACCESS_DENIED: .*RemoveLayer$/);
  const readable = await ctl(b, ['status'], true);
  t.is(readable.exitCode, 0, readable.stderr);
  const json = await ctl(b, ['remove', 'db', '--json']);
  t.is(json.exitCode, 1);
  t.is(JSON.parse(json.stdout).error.code, 'E_LAYER_UNKNOWN');
});

test('ctl exits 3 when no agent owns the name or no bus listens', async (t) => {
  const b = await bus(t);
  const none = await ctl(b, ['list']);
  t.is(none.exitCode, 3);
  t.regex(none.stderr, /^milkyway-agent: E_DBUS_UNREACHABLE: No agent on the bus/);
  const dir = await tempDir(t);
  const nobus = await execa(
    process.execPath,
    [BINS['milkyway-agent'], 'ctl', 'status', '--bus', `unix:path=${join(dir, 'none')}`],
    { reject: false, timeout: 30_000 },
  );
  t.is(nobus.exitCode, 3);
  t.regex(nobus.stderr, /E_DBUS_UNREACHABLE: Cannot connect to the bus .*ENOENT/);
});

test('ctl watch prints ServiceChanged and LayerChanged signals', async (t) => {
  const b = await bus(t);
  await serve(t, b);
  const watch = execa(
    process.execPath,
    [BINS['milkyway-agent'], 'ctl', 'watch', '--count', '2', '--timeout', '20', '--bus', b.daemon.address],
    { reject: false, timeout: 30_000 },
  );
  t.teardown(() => {
    watch.kill();
  });
  await new Promise<void>((resolve) => {
    watch.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('watching')) resolve();
    });
    setTimeout(resolve, 15_000);
  });
  t.is((await ctl(b, ['stop', 'web'])).exitCode, 0);
  t.is((await ctl(b, ['install', '/tmp/db.mwl'])).exitCode, 0);
  const r = await watch;
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(String(r.stdout), 'ServiceChanged web stopped\nLayerChanged db installed');
});

test('the service takes its name back after the bus daemon restarts', async (t) => {
  const b = await bus(t);
  const { log } = await serve(t, b);
  await b.daemon.stop();
  const again = await startBusDaemon({ configFile: b.configFile });
  t.teardown(() => again.stop());
  const env = { DBUS_SYSTEM_BUS_ADDRESS: again.address };
  let ok = false;
  for (let i = 0; i < 40 && !ok; i++) {
    const r = await execa('dbus-send', [...DEST, 'org.milkyway.Agent1.GetStatus'], {
      reject: false,
      env,
      timeout: 10_000,
    });
    ok = r.exitCode === 0;
    if (!ok) await new Promise((r2) => setTimeout(r2, 250));
  }
  t.true(ok, log.join('\n'));
  t.true(log.some((l) => l.startsWith('warn D-Bus: lost the bus')));
});
