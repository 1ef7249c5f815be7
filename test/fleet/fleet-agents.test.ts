// The fleet with REAL agents: two `milkyway-agent` processes, each PID 1 of its own PID and
// mount namespace (`unshare --pid --fork --mount --mount-proc`), each with its own peer
// identity and a `control` section, connect to the real broker on 127.0.0.1; `mway` (a child
// process) groups them, asks their status, pushes sealed secrets into a secret group on the
// data partition, runs a command with the exec scope, and reboots one (namespace mode: the
// agent answers, shuts down in order and exits with 133).
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Broker } from '../../control/broker/broker.ts';
import {
  crlPem,
  newIdentity,
  readCertificates,
  readPrivateKey,
  tlsContextOptions,
} from '../../keys/index.ts';
import { packLayer } from '../../layers/pack.ts';
import { makeRoot, startAgent } from '../agent/_namespace.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut, tempDir, until } from '../helpers.ts';

const pkiP = makeFleetPki();

test('mway manages real agents in namespace mode through the broker', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    crls: [p.crl],
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  // The user certificate that signs each machine's secure config, under the same user root.
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const agentPki = { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
  const agents = [];
  for (const id of [p.p1, p.p2]) {
    const r = await makeRoot(t, agentPki, {
      secure: { v: 1, groups: { app: { gid: 4242, layers: [] } } },
      config: {
        control: {
          broker: address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
          statusIntervalMs: 2000,
        },
      },
    });
    const a = startAgent(t, r);
    await a.waitFor(/peer link started/);
    agents.push({ root: r.root, agent: a });
  }
  await until('both agents connected', () => broker.peers.has('p1') && broker.peers.has('p2'));

  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const mway = (...args: string[]) => cli('mway', args, { env, timeout: 60_000 });
  const crlPath = join(dir, 'root.crl');
  await writeFile(crlPath, crlPem(p.crl));
  const base = ['--broker', address, '--fleet', 'prod', '--anchor', p.root.certPath, '--crl', crlPath];
  t.is(
    (await mway('config', 'init', ...base, '--key', p.admin.keyPath, '--cert', p.admin.certPath)).exitCode,
    0,
  );
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  await until('memberships held', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
    return rows.length === 2 && rows.every((x) => x.groups?.includes('web'));
  });

  const status = await mway('status', '--group', 'web', '--json', '--static');
  t.is(status.exitCode, 0, status.stdout + status.stderr);
  const st = jsonOut(status.stdout) as {
    peers: Array<{ peer: string; output: { agent: { mode: string; secureConfig: { verified: boolean } } } }>;
  };
  t.deepEqual(
    st.peers.map((x) => [x.peer, x.output.agent.mode, x.output.agent.secureConfig.verified]),
    [
      ['p1', 'namespace', true],
      ['p2', 'namespace', true],
    ],
  );

  const statusText = await mway('status', '--group', 'web');
  t.is(statusText.exitCode, 0, statusText.stderr);
  t.regex(statusText.stdout, /p1 +ok +running, services 0\/0 running \(0 failed\), 0 layer\(s\)/);

  const secrets = await mway(
    'secrets',
    '--group',
    'web',
    '--secret-group',
    'app',
    '--values',
    'DB_PASSWORD=s3cret',
  );
  t.is(secrets.exitCode, 0, secrets.stdout + secrets.stderr);
  for (const a of agents) {
    const f = join(a.root, 'data', 'group', 'app', 'secrets', 'DB_PASSWORD');
    t.is(await readFile(f, 'utf8'), 's3cret');
    const s = await stat(f);
    t.is(s.gid, 4242, 'owned by the secret group');
    t.is(s.mode & 0o007, 0, 'not readable by others');
  }

  // exec needs its own operator with the explicit exec scope.
  const execEnv = { MWAY_CONFIG_DIR: join(dir, 'mway-exec') };
  await cli('mway', ['config', 'init', ...base, '--key', p.execOp.keyPath, '--cert', p.execOp.certPath], {
    env: execEnv,
  });
  const run = await cli(
    'mway',
    ['run', '--group', 'web', '--json', '--static', '--', 'cat', '/proc/1/cmdline'],
    {
      env: execEnv,
    },
  );
  t.is(run.exitCode, 0, run.stdout + run.stderr);
  const out = jsonOut(run.stdout) as { peers: Array<{ output: { stdout: string } }> };
  // The command ran inside each agent's PID namespace, whose PID 1 is the agent.
  t.is(out.peers.length, 2);
  for (const x of out.peers) t.true(x.output.stdout.includes('milkyway-agent'), x.output.stdout);

  const human = await cli('mway', ['run', '--group', 'web', '--', 'echo', 'hello-fleet'], { env: execEnv });
  t.is(human.exitCode, 0, human.stderr);
  t.regex(human.stdout, /== p1 ==\nhello-fleet\n\[exit 0\]/);
  t.regex(human.stdout, /2 targeted, 2 succeeded, 0 failed, 0 no answer/);

  // A service that does not exist: the agent's own error code comes back, signed.
  const restart = await mway('service', '--peer', 'p1', 'restart', 'nosuch', '--json', '--static');
  t.is(restart.exitCode, 1);
  const rr = jsonOut(restart.stdout) as { peers: Array<{ outcome: string; code: string }> };
  t.is(rr.peers[0]?.outcome, 'failed');
  t.is(rr.peers[0]?.code, 'E_SERVICE_UNKNOWN');

  // A layer whose bytes match the signed digest but that is not a signed layer: the digest
  // check passes, the agent's own layer verification refuses it, nothing is installed.
  const junk = join(dir, 'junk.mwl');
  await writeFile(junk, Buffer.alloc(64 * 1024, 1));
  const install = await mway('install', '--peer', 'p1', junk, '--json', '--static');
  t.is(install.exitCode, 1);
  const ir = jsonOut(install.stdout) as { peers: Array<{ outcome: string; code: string }> };
  t.is(ir.peers[0]?.outcome, 'failed');
  t.regex(ir.peers[0]?.code ?? '', /^E_/);
  t.not(ir.peers[0]?.code, 'E_ACTION_DIGEST');
  const layers = await mway('status', '--peer', 'p1', '--json', '--static');
  const lr = jsonOut(layers.stdout) as { peers: Array<{ output: { layers: unknown[] } }> };
  t.deepEqual(lr.peers[0]?.output.layers, []);

  const reboot = await mway('reboot', '--peer', 'p2', '--json', '--static');
  t.is(reboot.exitCode, 0, reboot.stdout + reboot.stderr);
  t.is(await agents[1]?.agent.exit, 133, 'namespace mode: reboot exits 133 after an orderly shutdown');
  t.is(agents[0]?.agent.proc.exitCode, null, 'the other agent keeps running');
});

test('mway installs a signed layer on a group of real agents, a tampered stop is refused, the service restarts and the layer is removed', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  let hostile = false;
  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    // Turned hostile below: rewrites the arguments of every command it delivers.
    hooks: {
      outgoing: (o) => {
        const m = o.message;
        if (!hostile || m.kind !== 'command-deliver') return [m];
        const c = m.command as { payload: Record<string, unknown> };
        return [
          {
            ...m,
            command: { ...c, payload: { ...c.payload, args: { service: 'hello/web', note: 'tampered' } } },
          },
        ];
      },
    },
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const agentPki = { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
  const agents = [];
  for (const id of [p.p1, p.p2]) {
    const r = await makeRoot(t, agentPki, {
      config: {
        control: {
          broker: address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
        },
      },
    });
    const a = startAgent(t, r);
    await a.waitFor(/peer link started/);
    agents.push({ root: r.root, agent: a });
  }
  await until('both agents connected', () => broker.peers.has('p1') && broker.peers.has('p2'));
  // A user-signed layer whose service is a long sleep from the base.
  const src = join(dir, 'hello');
  await mkdir(join(src, 'rootfs', 'etc'), { recursive: true });
  await writeFile(join(src, 'rootfs', 'etc', 'hello.conf'), 'greeting=hi\n');
  await writeFile(
    join(src, 'layer.json'),
    JSON.stringify({
      name: 'hello',
      version: '1.0.0',
      kind: 'app',
      services: [{ name: 'web', execStart: ['/bin/sleep', '1000'] }],
    }),
  );
  const mwl = join(dir, 'hello.mwl');
  await packLayer({
    dir: src,
    key: await readPrivateKey(user.keyPath),
    chain: await readCertificates(user.certPath),
    out: mwl,
  });

  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const mway = (...args: string[]) => cli('mway', args, { env, timeout: 120_000 });
  t.is(
    (
      await mway(
        'config',
        'init',
        '--broker',
        address,
        '--fleet',
        'prod',
        '--anchor',
        p.root.certPath,
        '--key',
        p.admin.keyPath,
        '--cert',
        p.admin.certPath,
      )
    ).exitCode,
    0,
  );
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  await until('memberships held', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
    return rows.length === 2 && rows.every((x) => x.groups?.includes('web'));
  });
  const install = await mway('install', '--group', 'web', mwl, '--json', '--static');
  t.is(install.exitCode, 0, install.stdout + install.stderr);
  const ir = jsonOut(install.stdout) as { peers: Array<{ output: { name: string; state: string } }> };
  t.deepEqual(
    ir.peers.map((x) => [x.output.name, x.output.state]),
    [
      ['hello', 'active'],
      ['hello', 'active'],
    ],
  );
  await until(
    'services running',
    async () => {
      const r = jsonOut((await mway('service', '--group', 'web', 'list', '--json', '--static')).stdout) as {
        peers: Array<{ output: Array<{ state: string }> }>;
      };
      return r.peers.every((x) => x.output.some((s) => s.state === 'running'));
    },
    30_000,
  );
  const before = jsonOut(
    (await mway('service', '--peer', 'p1', 'status', 'hello/web', '--json', '--static')).stdout,
  ) as { peers: Array<{ output: { pid: number } }> };
  // A hostile broker tampers with a stop: both real agents refuse, the service keeps running.
  hostile = true;
  const stop = await mway('service', '--group', 'web', 'stop', 'hello/web', '--json', '--static');
  hostile = false;
  t.is(stop.exitCode, 1);
  const sr = jsonOut(stop.stdout) as { peers: Array<{ outcome: string; code: string }> };
  t.deepEqual(
    sr.peers.map((x) => `${x.outcome} ${x.code}`),
    ['refused E_CMD_SIGNATURE', 'refused E_CMD_SIGNATURE'],
  );
  const still = jsonOut(
    (await mway('service', '--peer', 'p1', 'status', 'hello/web', '--json', '--static')).stdout,
  ) as {
    peers: Array<{ output: { pid: number; state: string } }>;
  };
  t.is(still.peers[0]?.output.state, 'running');
  t.is(still.peers[0]?.output.pid, before.peers[0]?.output.pid);

  const restart = await mway('service', '--group', 'web', 'restart', 'hello/web', '--json', '--static');
  t.is(restart.exitCode, 0, restart.stdout + restart.stderr);
  await until(
    'a new process',
    async () => {
      const after = jsonOut(
        (await mway('service', '--peer', 'p1', 'status', 'hello/web', '--json', '--static')).stdout,
      ) as { peers: Array<{ output: { pid?: number; state: string } }> };
      const o = after.peers[0]?.output;
      return o?.state === 'running' && o.pid !== undefined && o.pid !== before.peers[0]?.output.pid;
    },
    30_000,
  );
  const remove = await mway('remove', '--group', 'web', 'hello');
  t.is(remove.exitCode, 0, remove.stdout + remove.stderr);
  const layers = jsonOut((await mway('status', '--group', 'web', '--json', '--static')).stdout) as {
    peers: Array<{ output: { layers: unknown[] } }>;
  };
  t.deepEqual(
    layers.peers.map((x) => x.output.layers),
    [[], []],
  );
});
