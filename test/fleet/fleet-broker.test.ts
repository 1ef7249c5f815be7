// A fleet on 127.0.0.1: the real broker (control/broker/broker.ts, SQLite on disk), peer links with
// their own identities, and `mway` run as a user runs it (a child process with its config in
// MWAY_CONFIG_DIR). Groups, a service restart, sealed secrets, a layer install, jobs, the audit
// log; an offline peer gets its pending command after a broker restart, exactly once.
// The agents here are recording AgentApis; test/fleet/fleet-agents.test.ts uses real agents.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { Broker } from '../../control/broker/broker.ts';
import { crlPem, tlsContextOptions } from '../../keys/index.ts';
import { type Recorder, recorder } from '../agent/remote/recording-agent.ts';
import { type FleetPki, type Id, makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut, tempDir, until } from '../helpers.ts';

const pkiP = makeFleetPki();

async function startBroker(p: FleetPki, dbPath: string, port = 0): Promise<Broker> {
  return Broker.start({
    dbPath,
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    crls: [p.crl],
    port,
    expirySweepMs: 200,
  });
}

async function peer(
  t: ExecutionContext,
  p: FleetPki,
  id: Id,
  broker: string,
  stateDir: string,
  rec: Recorder,
) {
  const link = await startPeerLink({
    api: rec.api,
    stateDir,
    log: () => {},
    config: {
      broker,
      fleet: 'prod',
      key: id.keyPath,
      cert: id.certPath,
      kemKey: id.kemKeyPath,
      anchors: [p.root.certPath],
      maxBackoffMs: 300,
      statusIntervalMs: 2000,
    },
  });
  t.teardown(() => link.stop());
  return link;
}

test('mway drives a fleet through the broker: groups, restart, secrets, install, jobs, audit; offline peer after broker restart', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const dbPath = join(dir, 'broker.sqlite');
  let broker = await startBroker(p, dbPath);
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const recs = { p1: recorder(), p2: recorder() };
  const s1 = join(dir, 'p1');
  const s2 = join(dir, 'p2');
  await peer(t, p, p.p1, address, s1, recs.p1);
  let link2 = await peer(t, p, p.p2, address, s2, recs.p2);
  await until('both peers online', () => broker.peers.has('p1') && broker.peers.has('p2'));

  const env = { MWAY_CONFIG_DIR: join(dir, 'mway'), MWAY_KEY_PASSPHRASE: '' };
  const mway = async (...args: string[]) => cli('mway', args, { env, timeout: 60_000 });
  const crlPath = join(dir, 'root.crl');
  await writeFile(crlPath, crlPem(p.crl));
  const init = await mway(
    'config',
    'init',
    '--broker',
    address,
    '--fleet',
    'prod',
    '--key',
    p.admin.keyPath,
    '--cert',
    p.admin.certPath,
    '--anchor',
    p.root.certPath,
    '--crl',
    crlPath,
  );
  t.is(init.exitCode, 0, init.stderr);

  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  const add = await mway('group', 'add', 'web', 'p1', 'p2');
  t.is(add.exitCode, 0, add.stderr);
  await until('memberships delivered', async () => {
    const r = await mway('status', '--json');
    const rows = jsonOut(r.stdout) as Array<{ peer: string; groups?: string[] }>;
    return rows.length === 2 && rows.every((x) => x.groups?.includes('web'));
  });
  const status = jsonOut((await mway('status', '--json')).stdout) as Array<{ status: string }>;
  t.true(
    status.every((s) => s.status === 'verified'),
    'every stored status verifies here',
  );

  const dry = await mway('service', '--group', 'web', 'restart', 'hello', '--dry-run', '--json', '--static');
  t.deepEqual(
    (jsonOut(dry.stdout) as { peers: Array<{ peer: string }> }).peers.map((x) => x.peer),
    ['p1', 'p2'],
  );
  t.deepEqual(recs.p1.calls, [], 'a dry run sends nothing');

  const restart = await mway('service', '--group', 'web', 'restart', 'hello');
  t.is(restart.exitCode, 0, restart.stdout + restart.stderr);
  t.regex(restart.stdout, /2 targeted, 2 succeeded, 0 failed, 0 no answer/);
  t.deepEqual(recs.p1.calls, ['restart hello']);
  t.deepEqual(recs.p2.calls, ['restart hello']);

  const secrets = await mway(
    'secrets',
    '--group',
    'web',
    '--secret-group',
    'hello',
    '--values',
    'DB_PASSWORD=s3cret',
    'API_KEY=k',
  );
  t.is(secrets.exitCode, 0, secrets.stdout + secrets.stderr);
  t.deepEqual(recs.p1.secrets, { hello: { API_KEY: 'k', DB_PASSWORD: 's3cret' } });
  t.deepEqual(recs.p2.secrets, { hello: { API_KEY: 'k', DB_PASSWORD: 's3cret' } });

  const layer = randomBytes(2 * 1024 * 1024 + 5);
  const layerPath = join(dir, 'hello.mwl');
  await writeFile(layerPath, layer);
  const install = await mway('install', '--group', 'web', layerPath, '--json', '--static');
  t.is(install.exitCode, 0, install.stdout + install.stderr);
  t.true(recs.p1.installed[0]?.equals(layer));

  // Larger than one command carries: sent as three signed 2 MiB pieces, then installed.
  const big = randomBytes(5 * 1024 * 1024 + 3);
  const bigPath = join(dir, 'big.mwl');
  await writeFile(bigPath, big);
  const bigInstall = await mway('install', '--group', 'web', bigPath, '--json', '--static');
  t.is(bigInstall.exitCode, 0, bigInstall.stdout + bigInstall.stderr);
  t.true(recs.p1.installed[1]?.equals(big));
  t.true(recs.p2.installed[1]?.equals(big));

  // An operator out of scope: the peers refuse, mway says so and exits 1.
  const exec = await mway('run', '--group', 'web', '--json', '--static', '--', 'id');
  t.is(exec.exitCode, 1);
  const execReport = jsonOut(exec.stdout) as { peers: Array<{ outcome: string; code: string }> };
  t.deepEqual(
    execReport.peers.map((x) => `${x.outcome} ${x.code}`),
    ['refused E_CMD_SCOPE_ACTION', 'refused E_CMD_SCOPE_ACTION'],
  );

  // --async prints the job id; `mway job` shows the verified results later.
  const asyncRun = await mway('service', '--group', 'web', 'restart', 'hello', '--async');
  t.is(asyncRun.exitCode, 0, asyncRun.stderr);
  const asyncId = asyncRun.stdout.trim();
  t.regex(asyncId, /^[0-9a-f]{32}$/);
  await until(
    'async job done',
    async () => jsonOut((await mway('job', asyncId, '--json')).stdout).summary.succeeded === 2,
  );
  // --batch 1 --max-fail 0: the first peer's refusal stops the rollout; the second is skipped.
  const stopped = await mway(
    'run',
    '--group',
    'web',
    '--batch',
    '1',
    '--max-fail',
    '0',
    '--timeout',
    '10',
    '--json',
    '--static',
    '--',
    'id',
  );
  t.is(stopped.exitCode, 1);
  const sr = jsonOut(stopped.stdout) as { peers: Array<{ outcome: string }> };
  t.deepEqual(sr.peers.map((x) => x.outcome).sort(), ['refused', 'skipped']);

  // p2 goes offline; the job waits for it.
  await link2.stop();
  await until('p2 offline', () => !broker.peers.has('p2'));
  const partial = await mway(
    'service',
    '--group',
    'web',
    'restart',
    'hello',
    '--timeout',
    '3',
    '--json',
    '--static',
  );
  t.is(partial.exitCode, 1);
  const job = jsonOut(partial.stdout) as {
    jobId: string;
    summary: { succeeded: number; noAnswer: number };
  };
  t.deepEqual(job.summary, { targeted: 2, succeeded: 1, failed: 0, noAnswer: 1 } as never);
  // The broker restarts with its database; p2 comes back and gets the pending command once.
  const port = broker.port;
  await broker.close();
  broker = await startBroker(p, dbPath, port);
  link2 = await peer(t, p, p.p2, address, s2, recs.p2);
  await until(
    'p2 ran the pending restart',
    () => recs.p2.calls.filter((c) => c === 'restart hello').length === 3,
    20_000,
  );
  await until(
    'job complete',
    async () => jsonOut((await mway('job', job.jobId, '--json')).stdout).summary.succeeded === 2,
  );
  // p1 reconnected to the restarted broker too and was redelivered nothing new to run.
  t.deepEqual(recs.p1.calls.filter((c) => c === 'restart hello').length, 3);
  await new Promise((r) => setTimeout(r, 1000));
  t.is(recs.p2.calls.filter((c) => c === 'restart hello').length, 3, 'at most once per peer');

  // A signed removal: p2 drops web and the next web command goes to p1 only.
  t.is((await mway('group', 'remove', 'web', 'p2')).exitCode, 0);
  await until('p2 left web', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{
      peer: string;
      groups?: string[];
    }>;
    return rows.some((x) => x.peer === 'p2' && x.groups !== undefined && !x.groups.includes('web'));
  });
  const after = jsonOut(
    (await mway('service', '--group', 'web', 'restart', 'hello', '--dry-run', '--json', '--static')).stdout,
  ) as {
    peers: Array<{ peer: string }>;
  };
  t.deepEqual(
    after.peers.map((x) => x.peer),
    ['p1'],
  );

  const jobs = await mway('jobs', '--json');
  t.true((jsonOut(jobs.stdout) as unknown[]).length >= 9);
  const audit = await mway('audit', '--verify');
  t.is(audit.exitCode, 0, audit.stdout + audit.stderr);
  t.regex(audit.stdout, /audit log verified/);
});
