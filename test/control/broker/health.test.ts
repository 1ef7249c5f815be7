// The broker's health endpoint (`health.listen`, GET /healthz), probed with curl as a
// monitoring system or a load balancer would: 200 and "ok" from a running milkywaysrvd, 503 and
// the failing check once the database stops answering, 404/405 for anything else, and the
// config refusing an address it cannot use; in NATS mode, the cluster connection (a real
// nats-server killed and started again). Everything listens on 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { startHealthEndpoint } from '../../../control/broker/health-endpoint.ts';
import { BINS, cli, jsonOut, tempDir, until } from '../../helpers.ts';
import { type FleetPki, makeFleetPki, startBroker } from '../broker-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';

const pki = await makeFleetPki(1);

async function writeConfig(dir: string, p: FleetPki, over: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, 'broker.json');
  await mkdir(join(dir, 'state'), { recursive: true });
  await writeFile(
    path,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      database: 'state/broker.db',
      mdns: { enabled: false },
      ...over,
    }),
  );
  return path;
}

/** curl's exit code, the HTTP status and the body (`-f` off: the status is read, not judged). */
async function curl(...args: string[]): Promise<{ exitCode: number; status: number; body: string }> {
  const r = await execa('curl', ['-sS', '--max-time', '20', '-w', '\\n%{http_code}', ...args], {
    reject: false,
    timeout: 30_000,
  });
  const out = String(r.stdout);
  const at = out.lastIndexOf('\n');
  return { exitCode: r.exitCode ?? 1, status: Number(out.slice(at + 1)), body: out.slice(0, at) };
}

test('milkywaysrvd serves GET /healthz on its own listener: 200 ok; HEAD, 404 and 405 as HTTP says', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t);
  const config = await writeConfig(dir, pki, { health: { listen: '127.0.0.1:0' } });
  const proc = spawn(process.execPath, [BINS.milkywaysrvd, 'serve', '--config', config, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => proc.kill('SIGKILL'));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const first = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
    });
    void exit.then(() => reject(new Error(`milkywaysrvd exited: ${stderr}`)));
  });
  const info = jsonOut(first) as { health: string; listening: string };
  t.regex(info.health, /^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
  t.not(info.health.split(':')[2]?.split('/')[0], info.listening.split(':')[1], 'a listener of its own');

  const ok = await curl('-f', info.health);
  t.is(ok.exitCode, 0, ok.body);
  t.is(ok.status, 200);
  t.deepEqual(JSON.parse(ok.body), {
    status: 'ok',
    checks: { broker: 'ok', listener: 'ok', database: 'ok' },
    peers: 0,
  });
  const head = await curl('-I', info.health);
  t.is(head.status, 200);
  t.regex(head.body, /content-type: application\/json/i);
  const post = await curl('-X', 'POST', '-d', 'x', info.health);
  t.is(post.status, 405);
  t.regex(post.body, /use GET or HEAD/);
  const other = await curl(info.health.replace('/healthz', '/metrics'));
  t.is(other.status, 404);

  // A client that connects and never sends a request does not hold the listener: it is cut
  // off (the request timeout), and /healthz still answers meanwhile.
  const idle = connect(Number(info.health.split(':')[2]?.split('/')[0]), '127.0.0.1');
  const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
  idle.on('error', () => {});
  t.is((await curl('-f', info.health)).status, 200);
  await Promise.race([
    idleClosed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('idle connection never cut')), 60_000)),
  ]);

  proc.kill('SIGTERM');
  t.is(await exit, 0, stderr);
  t.not((await curl(info.health)).exitCode, 0, 'gone with the broker');
});

test('/healthz is 503 "unavailable" naming the failed check when the database stops answering, and while the broker stops', async (t) => {
  const dir = await tempDir(t);
  const broker = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const health = await startHealthEndpoint({ host: '127.0.0.1', port: 0, report: () => broker.health() });
  t.teardown(() => health.close());
  const url = `http://127.0.0.1:${health.port}/healthz`;
  t.is((await curl('-f', url)).status, 200);
  broker.db.close();
  const down = await curl('-f', url);
  t.is(down.exitCode, 22, 'curl -f fails on it, as a probe should');
  const body = await curl(url);
  t.is(body.status, 503);
  const report = JSON.parse(body.body) as { status: string; checks: Record<string, string> };
  t.is(report.status, 'unavailable');
  t.regex(report.checks.database ?? '', /^does not answer: /);
  t.is(report.checks.listener, 'ok');
  await broker.close();
  const stopped = JSON.parse((await curl(url)).body) as { checks: Record<string, string> };
  t.is(stopped.checks.broker, 'stopping');
  t.is(stopped.checks.listener, 'not listening');
});

test('check-config names a health.listen it cannot use; serve refuses a port already taken, starting nothing', async (t) => {
  const dir = await tempDir(t);
  const bad = await cli('milkywaysrvd', [
    'check-config',
    '--config',
    await writeConfig(dir, pki, { health: { listen: 'localhost' } }),
    '--json',
  ]);
  t.is(bad.exitCode, 1, bad.stdout);
  t.like(jsonOut(bad.stdout), {
    ok: false,
    error: { code: 'E_CONFIG', details: { field: 'health.listen' } },
  });
  const same = await cli('milkywaysrvd', [
    'check-config',
    '--config',
    await writeConfig(dir, pki, { listen: '127.0.0.1:7443', health: { listen: '127.0.0.1:7443' } }),
    '--json',
  ]);
  t.like(jsonOut(same.stdout), {
    ok: false,
    error: { code: 'E_CONFIG', details: { field: 'health.listen' } },
  });
  const good = await cli('milkywaysrvd', [
    'check-config',
    '--config',
    await writeConfig(dir, pki, { health: {} }),
    '--json',
  ]);
  t.is(good.exitCode, 0, good.stdout + good.stderr);
  t.like(jsonOut(good.stdout), { health: '127.0.0.1:7444' });

  // The health port is taken: serve says so and exits, the broker's own port released.
  const taken = await startHealthEndpoint({
    host: '127.0.0.1',
    port: 0,
    report: () => ({ status: 'ok', checks: {} }),
  });
  t.teardown(() => taken.close());
  const r = await cli(
    'milkywaysrvd',
    [
      'serve',
      '--config',
      await writeConfig(dir, pki, { health: { listen: `127.0.0.1:${taken.port}` } }),
      '--json',
    ],
    { timeout: 60_000 },
  );
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  t.like(jsonOut(r.stdout), {
    ok: false,
    error: { code: 'E_CONFIG', details: { field: 'health.listen' } },
  });
  t.regex(jsonOut(r.stdout).error.message, /EADDRINUSE/);
});

test('in NATS mode /healthz names the cluster connection: unavailable while the servers are down, ok once the client is back', async (t) => {
  t.timeout(180_000);
  const dir = await tempDir(t);
  const cluster = await startNatsCluster(t, 3);
  const broker = await startBroker(t, pki, {
    dbPath: join(dir, 'broker.db'),
    nats: { servers: cluster.urls, replicas: 3 },
  });
  const health = await startHealthEndpoint({ host: '127.0.0.1', port: 0, report: () => broker.health() });
  t.teardown(() => health.close());
  const url = `http://127.0.0.1:${health.port}/healthz`;
  const checks = async () => {
    const r = await curl(url);
    return { status: r.status, checks: (JSON.parse(r.body) as { checks: Record<string, string> }).checks };
  };
  t.like(await checks(), { status: 200, checks: { nats: 'ok' } });
  // Every server down: the client has nowhere to reconnect to.
  for (const node of cluster.nodes) await cluster.kill(node);
  await until('health sees NATS down', async () => (await checks()).status === 503);
  t.regex((await checks()).checks.nats ?? '', /^disconnected from .*; reconnecting$/);
  for (const node of cluster.nodes) await cluster.start(node);
  await until('health sees NATS back', async () => (await checks()).status === 200, 60_000);
  t.is((await checks()).checks.nats, 'ok');
});
