// The broker database's schema as an ordered list of numbered migrations (bottlerocket's
// rule: every change of stored state is a migration). `PRAGMA user_version` holds the number
// of the last one applied; each runs in its own transaction with the version bump, so a crash
// or a failing step leaves the database at the previous version. A database newer than this
// list is refused, never touched. Migrations already shipped are never edited, only appended.
import type { DatabaseSync } from 'node:sqlite';
import { errorMessage } from '../../common/index.ts';
import { BrokerError } from './broker-error.ts';

export interface Migration {
  /** 1, 2, 3, … in order; the database's user_version after it ran. */
  readonly version: number;
  /** What it changes, for the log and doc/broker.md. */
  readonly name: string;
  readonly up: (db: DatabaseSync) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'peers, enrollments, groups, memberships, jobs, deliveries and the audit chain',
    up: (db) =>
      db.exec(`
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE peers (
  peer_id TEXT PRIMARY KEY, name TEXT NOT NULL, fingerprint TEXT NOT NULL, certificate TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}', last_seen TEXT, status TEXT, created TEXT NOT NULL);
CREATE TABLE enrollments (
  request_id TEXT PRIMARY KEY, peer_id TEXT NOT NULL, name TEXT NOT NULL, fingerprint TEXT NOT NULL,
  labels TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL, certificate TEXT, created TEXT NOT NULL);
CREATE TABLE groups (name TEXT PRIMARY KEY, created TEXT NOT NULL);
CREATE TABLE memberships (
  group_name TEXT NOT NULL, peer_id TEXT NOT NULL, op TEXT NOT NULL, envelope TEXT,
  acked INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, PRIMARY KEY (group_name, peer_id));
CREATE TABLE jobs (
  job_id TEXT PRIMARY KEY, operator TEXT NOT NULL, command TEXT NOT NULL, expires_at TEXT NOT NULL,
  batch INTEGER, max_fail INTEGER, created TEXT NOT NULL);
CREATE TABLE deliveries (
  job_id TEXT NOT NULL, peer_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
  outcome TEXT, result TEXT, sent INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL,
  PRIMARY KEY (job_id, peer_id));
CREATE INDEX deliveries_peer ON deliveries (peer_id, state);
CREATE INDEX deliveries_state ON deliveries (state);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
  data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema', '1');
`),
  },
  {
    // Version 1 kept its number in meta.schema (its only row); user_version says it now.
    version: 2,
    name: 'the schema version moves from meta.schema to PRAGMA user_version',
    up: (db) => db.exec('DROP TABLE meta'),
  },
  {
    // A peer's answer to a membership: NULL until it applied one, or the code it refused with.
    version: 3,
    name: "memberships keep the peer's refusal code",
    up: (db) => db.exec('ALTER TABLE memberships ADD COLUMN refusal TEXT'),
  },
  {
    // A result is stored once, in its audit entry; the delivery names that entry. Rows written
    // before keep their own copy in `result`.
    version: 4,
    name: "a delivery's result is the envelope in its audit entry (result_seq), not a second copy",
    up: (db) => db.exec('ALTER TABLE deliveries ADD COLUMN result_seq INTEGER'),
  },
  {
    // Small broker state by key: NATS mode's cursor into MWAY_RES (doc/nats.md), so a restart
    // goes on from where it read instead of re-reading the stream from its start.
    version: 5,
    name: 'table state: small broker state by key (the NATS answers cursor)',
    up: (db) => db.exec('CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)'),
  },
];

/** The version this broker writes: the last migration's. */
export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

function userVersion(db: DatabaseSync): number {
  const r = db.prepare('PRAGMA user_version').get() as { user_version?: number } | undefined;
  return Number(r?.user_version ?? 0);
}

function hasTable(db: DatabaseSync, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/**
 * The version a database is at. Brokers before migrations kept `1` in meta.schema and left
 * user_version 0; an empty database is 0. Anything else at user_version 0 is not ours.
 */
export function schemaVersionOf(db: DatabaseSync, path: string): number {
  const v = userVersion(db);
  if (v !== 0) return v;
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
    n: number;
  };
  if (Number(tables.n) === 0) return 0;
  if (hasTable(db, 'meta')) {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
      | { value: string }
      | undefined;
    if (row?.value === '1') return 1;
    throw new BrokerError(
      'E_BROKER_DB',
      `Broker database ${path} has schema ${JSON.stringify(row?.value ?? null)} in meta, this broker knows 1 … ${SCHEMA_VERSION}`,
      { path },
    );
  }
  throw new BrokerError('E_BROKER_DB', `${path} is an SQLite database, but not a broker database`, { path });
}

/**
 * Brings `db` to the last migration of `migrations`, one transaction per step. Returns the
 * versions it applied. A database newer than the list is refused before anything is written.
 */
export function migrate(
  db: DatabaseSync,
  path: string,
  migrations: readonly Migration[] = MIGRATIONS,
): number[] {
  const latest = migrations.at(-1)?.version ?? 0;
  const from = schemaVersionOf(db, path);
  if (from > latest) {
    throw new BrokerError(
      'E_BROKER_DB_NEWER',
      `Broker database ${path} is at schema ${from}, written by a newer broker; this one knows up to ${latest} and changed nothing`,
      { path, details: { version: from, known: latest } },
    );
  }
  const applied: number[] = [];
  for (const [i, m] of migrations.entries()) {
    if (m.version !== i + 1) throw new TypeError(`Migration ${i + 1} is numbered ${m.version}`);
    if (m.version <= from) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      m.up(db);
      db.exec(`PRAGMA user_version = ${m.version}`);
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw new BrokerError(
        'E_BROKER_DB_MIGRATE',
        `Cannot migrate broker database ${path} to schema ${m.version} (${m.name}): ${errorMessage(e)}; it is left at ${m.version - 1}`,
        { path, cause: e, details: { version: m.version - 1, failed: m.version } },
      );
    }
    applied.push(m.version);
  }
  return applied;
}
