// A compose file joining real applications, imported with `mway-layer import-compose` and run
// by the agent as PID 1 of a namespace with a network of its own: postgresql (its password
// from compose's environment over the image's, a named volume, readiness from its
// healthcheck's pg_isready), a small app in psql's SQL that writes a row at start and so
// works only when it starts after the database is ready (depends_on: service_healthy), and
// redis with its append-only file in a named volume, and a web app in Python (psycopg2) that
// records each of its starts in the database and serves the count. Checked with psql and curl
// from the host and the image's redis-cli; after a reboot both volumes kept their data and
// both apps wrote again.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../../common/exec.ts';
import { readLayer } from '../../../layers/index.ts';
import { debianImage } from '../../_debian-image.ts';
import { cli, jsonOut, until } from '../../helpers.ts';
import { makePki, makeRoot, type RunningAgent, startAgent } from '../_namespace.ts';
import { inside, processes } from './_oci-app.ts';
import { PASSWORD, POSTGRES, PYAPP, REDIS } from './_oci-images.ts';
import { sandboxExecOnPath } from '../services/_sandbox-exec.ts';

const SECRET = 'from-compose';

const compose = (pg: string, redis: string, py: string) => `
name: shop
services:
  db:
    image: ${pg}
    environment:
      POSTGRES_PASSWORD: ${SECRET}
    ports: ["5432:5432"]
    volumes: ["dbdata:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"]
      interval: 200ms
  app:
    image: ${pg}
    entrypoint: ["psql"]
    command: >-
      "host=127.0.0.1 user=postgres dbname=postgres" -v ON_ERROR_STOP=1
      -c "CREATE TABLE IF NOT EXISTS visits (n serial); INSERT INTO visits DEFAULT VALUES"
    user: postgres
    environment: [PGPASSWORD=${SECRET}]
    depends_on:
      db: { condition: service_healthy }
    restart: "no"
  cache:
    image: ${redis}
    command: ["redis-server", "--protected-mode", "no", "--appendonly", "yes"]
    ports: ["6379:6379"]
    volumes: ["cachedata:/data"]
  web:
    image: ${py}
    environment:
      DATABASE_URL: host=127.0.0.1 user=postgres dbname=postgres password=${SECRET}
    ports: ["8000:8000"]
    depends_on:
      db: { condition: service_healthy }
volumes:
  dbdata: {}
  cachedata:
`;

async function psql(agent: RunningAgent, sql: string, password = SECRET) {
  const args = ['-t', String(await agent.hostPid()), '-n', '--', 'psql', '-X', '-A', '-t'];
  return run('nsenter', [...args, 'host=127.0.0.1 user=postgres dbname=postgres', '-c', sql], {
    timeout: 60_000,
    reject: false,
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
  });
}

test('a compose file of postgres, an app that needs it ready, redis and a Python web app using the database: imported as one layer group, started in order, data kept across a reboot', async (t) => {
  // Its exec readiness probes (compose healthchecks) are entered by the built helper.
  await sandboxExecOnPath();
  t.timeout(30 * 60_000);
  const [pg, redis, py] = [await debianImage(POSTGRES), await debianImage(REDIS), await debianImage(PYAPP)];
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const file = join(r.root, 'compose.yaml');
  await writeFile(file, compose(pg, redis, py));
  const imported = await cli(
    'mway-layer',
    [
      'import-compose',
      file,
      '--key',
      pki.userKeyPath,
      '--cert',
      pki.userCertPath,
      '-o',
      join(r.root, 'layers'),
      '--json',
    ],
    { timeout: 900_000 },
  );
  t.is(imported.exitCode, 0, imported.stderr);
  const j = jsonOut(imported.stdout) as { project: string; layers: { layer: string }[]; notes: string[] };
  t.is(j.project, 'shop');
  t.deepEqual(
    j.layers.map((l) => l.layer),
    ['shop-db', 'shop-app', 'shop-cache', 'shop-web'],
  );
  t.true(j.notes.some((n) => n.startsWith('services.db.healthcheck: the check is readiness')));
  const app = (await readLayer(join(r.root, 'layers', 'shop-app.mwl'))).manifest;
  t.deepEqual(app.groups, ['shop']);
  t.like(app.services[0], {
    name: 'app',
    execStart: [
      'psql',
      'host=127.0.0.1 user=postgres dbname=postgres',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      'CREATE TABLE IF NOT EXISTS visits (n serial); INSERT INTO visits DEFAULT VALUES',
    ],
    after: ['shop-db/db'],
    requires: ['shop-db/db'],
    restart: 'no',
    user: 'postgres',
  });
  const db = (await readLayer(join(r.root, 'layers', 'shop-db.mwl'))).manifest.services[0];
  t.is(db?.environment.POSTGRES_PASSWORD, SECRET);
  t.deepEqual(db?.readiness, {
    type: 'exec',
    command: ['pg_isready', '-q', '-h', '127.0.0.1', '-U', 'postgres'],
    intervalSec: 0.2,
  });

  const boot = async () => {
    const a = startAgent(t, r, [], { net: true });
    const done = await a.waitFor(/boot done: [^\n]*/, 300_000);
    // The app exits 0 once it has written its row: it ran only after db was ready, or it failed.
    t.regex(done, /4 services \(0 failed\)/, a.output());
    return a;
  };
  const redisCli = async (a: RunningAgent, ...args: string[]) => {
    const [server] = await processes(a, 'redis-server');
    const out = await inside(server ?? 0, ['-m', '-n'], ['redis-cli', '-h', '127.0.0.1', ...args]);
    t.is(out.exitCode, 0, out.stderr);
    return out.stdout.trim();
  };
  // The app is ready once it runs and exits after its INSERT; with restart "no" it runs once, so
  // its row is there only if it started after db accepted connections.
  const visits = async (a: RunningAgent, n: number) => {
    await until(
      `visits has ${n} rows`,
      async () => (await psql(a, 'SELECT count(*) FROM visits')).stdout.trim() === String(n),
      60_000,
    );
    t.notRegex(a.output(), /shop-app\/app (failed|ended)/);
  };
  // The Python app's own count of its starts, over HTTP from the agent's network (curl).
  const starts = async (a: RunningAgent, n: number) => {
    const args = ['-t', String(await a.hostPid()), '-n', '--', 'curl', '-sf', 'http://127.0.0.1:8000/'];
    await until(
      `the web app counts ${n} starts`,
      async () => (await run('nsenter', args, { timeout: 30_000, reject: false })).stdout === `starts=${n}\n`,
      60_000,
    );
    t.is((await psql(a, 'SELECT count(*) FROM starts')).stdout.trim(), String(n));
  };
  const a = await boot();
  await visits(a, 1);
  await starts(a, 1);
  // The image's own password (its config's Env) was replaced by compose's environment.
  t.regex((await psql(a, 'SELECT 1', PASSWORD)).stderr, /password authentication failed/);
  t.is(await redisCli(a, 'SET', 'shop:kept', 'yes'), 'OK');
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);

  const b = await boot();
  await visits(b, 2);
  await starts(b, 2);
  // Written to the append-only file in its volume, no SAVE: kept across the reboot.
  t.is(await redisCli(b, 'GET', 'shop:kept'), 'yes');
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
});
