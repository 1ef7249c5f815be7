// A relational database from its container image, unedited: Debian's postgresql-15 installed
// by mmdebstrap, made an OCI image by umoci the way the official postgres image is made — its
// packages, an entrypoint that initialises $PGDATA on first start and drops to the image's
// postgres user (docker-entrypoint.sh's job; here setpriv from util-linux where it uses gosu),
// Cmd postgres, Volume /var/lib/postgresql/data, ExposedPorts 5432/tcp, StopSignal SIGINT —
// imported with importOci as it is and run by the agent as PID 1 of a namespace with a
// network of its own. Checked from the host with psql (Debian's postgresql-client) over TCP
// with a password: a table written on the first boot is read back after a reboot from the
// same cluster (same system identifier, not initialised again), and a wrong password is refused.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import type { RunningAgent } from '../_namespace.ts';
import { importApp, inside, processes, uidOf } from './_oci-app.ts';
import { PASSWORD, POSTGRES } from './_oci-images.ts';

/** psql from the host, in the agent's network namespace, over TCP to 127.0.0.1:5432. */
async function psql(agent: RunningAgent, sql: string, password = PASSWORD) {
  return run(
    'nsenter',
    [
      '-t',
      String(await agent.hostPid()),
      '-n',
      '--',
      'psql',
      '-X',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      'host=127.0.0.1 port=5432 user=postgres dbname=postgres',
      '-c',
      sql,
    ],
    { timeout: 60_000, reject: false, env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' } },
  );
}

test('postgresql from its Debian-built OCI image runs unedited: initialises its volume on first start, psql writes a table that is there after a reboot', async (t) => {
  t.timeout(30 * 60_000);
  const app = await importApp(t, POSTGRES, 'postgres', '15.20.0');
  t.deepEqual(app.imported.unmapped, []);
  const service = app.imported.manifest.services[0];
  t.like(service, {
    name: 'postgres',
    execStart: ['docker-entrypoint.sh', 'postgres'],
    user: 'root',
    killSignal: 'SIGINT',
    readiness: { type: 'tcp', port: 5432, host: '127.0.0.1' },
    volumes: ['/var/lib/postgresql/data'],
  });
  t.true(service?.capabilityBoundingSet.includes('CAP_CHOWN'));

  const a = await app.boot();
  const created = await psql(
    a,
    "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across boots'); SELECT current_user;",
  );
  t.is(created.exitCode, 0, created.stderr + a.output());
  t.is(created.stdout.trim(), 'CREATE TABLE\nINSERT 0 1\npostgres');
  const id1 = await psql(a, 'SELECT system_identifier FROM pg_control_system()');
  t.regex(id1.stdout.trim(), /^\d+$/);
  const wrong = await psql(a, 'SELECT 1', 'not-the-password');
  t.not(wrong.exitCode, 0);
  t.regex(wrong.stderr, /password authentication failed for user "postgres"/);
  // The server runs as the image's postgres user (its /etc/passwd's uid), not root; its data
  // directory is the volume on the data partition, initialised there.
  const servers = await processes(a, 'postgres');
  t.true(servers.length >= 2, a.output());
  const passwd = await inside(servers[0] as number, ['-m'], ['cat', '/etc/passwd']);
  const pgUid = Number(/^postgres:[^:]*:(\d+):/m.exec(passwd.stdout)?.[1]);
  t.true(pgUid > 0);
  // A backend that ended between the listing and its /proc read (the refused login's, say) has
  // no uid left to check; the rest, at least the postmaster and its helpers, must all be postgres.
  const uids = (await Promise.all(servers.map(uidOf))).filter((u) => u !== undefined);
  t.true(uids.length >= 2, a.output());
  t.deepEqual([...new Set(uids)], [pgUid]);
  const volume = join(app.root.root, 'data', 'secure', 'postgres', 'volumes', 'postgres');
  t.is(await readFile(join(volume, 'var%2Flib%2Fpostgresql%2Fdata', 'PG_VERSION'), 'utf8'), '15\n');
  // Stop: the agent sends SIGINT (postgres's fast shutdown) and the agent exits cleanly.
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);

  const b = await app.boot();
  const read = await psql(b, 'SELECT v FROM kept');
  t.is(read.exitCode, 0, read.stderr + b.output());
  t.is(read.stdout.trim(), 'across boots');
  const id2 = await psql(b, 'SELECT system_identifier FROM pg_control_system()');
  t.is(id2.stdout.trim(), id1.stdout.trim());
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
});
