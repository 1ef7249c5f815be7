// The broker database migrates by PRAGMA user_version: a database made by the version-1
// schema (what brokers before migrations wrote, meta.schema = 1) is brought to the current
// version with its rows intact; a newer one is refused untouched; a failing step rolls back.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AuditLog, BrokerDb, MIGRATIONS, migrate, SCHEMA_VERSION } from '../../../control/broker/index.ts';
import { tempDir } from '../../helpers.ts';

// The schema exactly as control/broker/broker-db.ts created it before migrations (main at
// f423469): copied here, not imported, so an edit to migration 1 shows up as a failure.
const VERSION_1_SQL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
  peer_id TEXT PRIMARY KEY, name TEXT NOT NULL, fingerprint TEXT NOT NULL, certificate TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}', last_seen TEXT, status TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS enrollments (
  request_id TEXT PRIMARY KEY, peer_id TEXT NOT NULL, name TEXT NOT NULL, fingerprint TEXT NOT NULL,
  labels TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL, certificate TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
  group_name TEXT NOT NULL, peer_id TEXT NOT NULL, op TEXT NOT NULL, envelope TEXT,
  acked INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, PRIMARY KEY (group_name, peer_id));
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY, operator TEXT NOT NULL, command TEXT NOT NULL, expires_at TEXT NOT NULL,
  batch INTEGER, max_fail INTEGER, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
  job_id TEXT NOT NULL, peer_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
  outcome TEXT, result TEXT, sent INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL,
  PRIMARY KEY (job_id, peer_id));
CREATE INDEX IF NOT EXISTS deliveries_peer ON deliveries (peer_id, state);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
  data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
`;

const T = '2026-12-01T00:00:00.000Z';

/** A database as a version-1 broker left it, with a peer, a group, a job and an audit entry. */
function makeVersion1(path: string): void {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  db.exec(VERSION_1_SQL);
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', '1');
  db.prepare(
    'INSERT INTO peers (peer_id, name, fingerprint, certificate, labels, created) VALUES (?, ?, ?, ?, ?, ?)',
  ).run('peer-1', 'web-1', 'ab'.repeat(32), '-----BEGIN CERTIFICATE-----', '{"role":"web"}', T);
  db.prepare('INSERT INTO groups (name, created) VALUES (?, ?)').run('web', T);
  db.prepare(
    'INSERT INTO jobs (job_id, operator, command, expires_at, batch, max_fail, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run('job-1', 'op', '{"v":1}', T, null, null, T);
  db.prepare('INSERT INTO deliveries (job_id, peer_id, seq, state, updated) VALUES (?, ?, ?, ?, ?)').run(
    'job-1',
    'peer-1',
    1,
    'queued',
    T,
  );
  db.prepare('INSERT INTO audit (seq, time, kind, actor, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    1,
    T,
    'command',
    'op',
    '{}',
    '0'.repeat(64),
    'f'.repeat(64),
  );
  db.close();
}

function userVersion(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  } finally {
    db.close();
  }
}

function tables(db: DatabaseSync): string[] {
  return (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
}

test('the migrations are numbered 1, 2, … in order and the last is the schema version', (t) => {
  t.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
  t.is(SCHEMA_VERSION, MIGRATIONS.length);
  t.true(SCHEMA_VERSION >= 2);
});

test('a database made by the version-1 schema is migrated to the current version, its rows intact', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'broker.db');
  makeVersion1(path);
  t.is(userVersion(path), 0, 'version-1 brokers left user_version 0');
  const b = new BrokerDb(path);
  try {
    t.is(userVersion(path), SCHEMA_VERSION);
    t.false(tables(b.db).includes('meta'), 'migration 2 drops meta.schema');
    t.deepEqual(
      b.peers().map((p) => [p.peerId, p.name, p.labels]),
      [['peer-1', 'web-1', { role: 'web' }]],
    );
    t.true(b.hasGroup('web'));
    t.is(b.job('job-1')?.operator, 'op');
    t.is(b.delivery('job-1', 'peer-1')?.state, 'queued');
    t.is(b.auditHead()?.hash, 'f'.repeat(64));
  } finally {
    b.close();
  }
  // Opening again applies nothing.
  const again = new DatabaseSync(path);
  try {
    t.deepEqual(migrate(again, path), []);
  } finally {
    again.close();
  }
});

test('a new database is created by running every migration', async (t) => {
  const path = join(await tempDir(t), 'state', 'broker.db');
  const b = new BrokerDb(path);
  try {
    t.deepEqual(tables(b.db), [
      'audit',
      'deliveries',
      'enrollments',
      'groups',
      'jobs',
      'memberships',
      'peers',
      'state',
    ]);
  } finally {
    b.close();
  }
  t.is(userVersion(path), SCHEMA_VERSION);
});

test('a database newer than this broker is refused with E_BROKER_DB_NEWER and left unchanged', async (t) => {
  const path = join(await tempDir(t), 'broker.db');
  new BrokerDb(path).close();
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}; CREATE TABLE from_the_future (x);`);
  db.close();
  const before = await readFile(path);
  const e = t.throws(() => new BrokerDb(path));
  t.is((e as { code?: string }).code, 'E_BROKER_DB_NEWER');
  t.regex(e?.message ?? '', new RegExp(`schema ${SCHEMA_VERSION + 1}.*up to ${SCHEMA_VERSION}`));
  t.deepEqual(await readFile(path), before);
  t.is(userVersion(path), SCHEMA_VERSION + 1);
});

test('a version-0 database with another meta.schema, or without meta, is refused (E_BROKER_DB)', async (t) => {
  const dir = await tempDir(t);
  const odd = join(dir, 'odd.db');
  const db = new DatabaseSync(odd);
  db.exec(
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '7');",
  );
  db.close();
  t.throws(() => new BrokerDb(odd), { code: 'E_BROKER_DB', message: /has schema "7"/ });
  const other = join(dir, 'other.db');
  const db2 = new DatabaseSync(other);
  db2.exec('CREATE TABLE notes (x)');
  db2.close();
  t.throws(() => new BrokerDb(other), { code: 'E_BROKER_DB', message: /not a broker database/ });
});

test('a failing migration rolls back: the database stays at the version before it (E_BROKER_DB_MIGRATE)', async (t) => {
  const path = join(await tempDir(t), 'broker.db');
  const db = new DatabaseSync(path);
  try {
    const steps = [
      MIGRATIONS[0]!,
      {
        version: 2,
        name: 'half done',
        up: (d: DatabaseSync) => {
          d.exec('CREATE TABLE half (x)');
          throw new Error('disk full');
        },
      },
    ];
    t.throws(() => migrate(db, path, steps), { code: 'E_BROKER_DB_MIGRATE', message: /left at 1/ });
    t.is(Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version), 1);
    t.false(tables(db).includes('half'));
    t.true(tables(db).includes('peers'));
  } finally {
    db.close();
  }
});

test('a result written by schema 3 (its own copy in deliveries.result) still reads; a new one is stored once, in its audit entry', async (t) => {
  const path = join(await tempDir(t), 'broker.db');
  const old = new DatabaseSync(path);
  migrate(old, path, MIGRATIONS.slice(0, 3));
  const envelope = { v: 1, type: 'result', payload: { status: 'ok' }, signatures: [{ alg: 'x' }] };
  old
    .prepare(
      'INSERT INTO jobs (job_id, operator, command, expires_at, batch, max_fail, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    .run('job-1', 'op', '{"v":1}', T, null, null, T);
  const ins = old.prepare(
    'INSERT INTO deliveries (job_id, peer_id, seq, state, outcome, result, updated) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  ins.run('job-1', 'peer-1', 0, 'done', 'ok', JSON.stringify(envelope), T);
  ins.run('job-1', 'peer-2', 1, 'pending', null, null, T);
  old.close();
  const b = new BrokerDb(path);
  try {
    t.is(userVersion(path), SCHEMA_VERSION);
    t.deepEqual(b.delivery('job-1', 'peer-1')?.result, envelope);
    t.deepEqual(
      b.deliveries('job-1').map((d) => [d.peerId, d.state, d.result]),
      [
        ['peer-1', 'done', envelope],
        ['peer-2', 'pending', null],
      ],
    );
    // peer-2 answers under the new schema: the envelope goes into the audit entry only.
    const second = { ...envelope, payload: { status: 'second' } };
    t.true(b.awaitsResult('job-1', 'peer-2'));
    const entry = new AuditLog(b).append('result', 'peer:peer-2', {
      jobId: 'job-1',
      peerId: 'peer-2',
      outcome: 'failed',
      envelope: second,
    });
    t.true(b.setResult('job-1', 'peer-2', 'failed', entry.seq, T));
    t.false(b.awaitsResult('job-1', 'peer-2'), 'a second result for it is a duplicate');
    t.false(b.setResult('job-1', 'peer-2', 'ok', entry.seq, T));
    const raw = b.db.prepare('SELECT result, result_seq FROM deliveries WHERE peer_id = ?').get('peer-2') as {
      result: unknown;
      result_seq: unknown;
    };
    t.deepEqual({ ...raw }, { result: null, result_seq: entry.seq });
    t.deepEqual(b.delivery('job-1', 'peer-2')?.result, second);
    t.is(b.delivery('job-1', 'peer-2')?.outcome, 'failed');
    t.deepEqual(b.delivery('job-1', 'peer-1')?.result, envelope, 'the old row keeps its own copy');
  } finally {
    b.close();
  }
});
