// The broker's state in an embedded SQLite database (node:sqlite, no native build):
// peers and their certificates and last signed status, enrollment requests, groups and
// the operator-signed memberships the broker relays, jobs, per-peer deliveries (the
// pending queue) with their results, and the audit chain. Every change is committed
// before the broker acknowledges it, so a restart (even kill -9) loses nothing that was
// acknowledged. WAL with synchronous=NORMAL: durable across process crashes; a power cut
// may lose the last transactions, which agents and operators tolerate (redelivery, retry).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { errorMessage } from '../../common/index.ts';
import type { AuditEntry } from '../wire/index.ts';
import { BrokerError } from './broker-error.ts';
import { migrate } from './broker-migrations.ts';
import { startWalCheckpointer, type WalCheckpointer } from './wal-checkpointer.ts';

/** States of one (job, peer) delivery. */
export type DeliveryState = 'queued' | 'pending' | 'done' | 'expired' | 'skipped' | 'cancelled';

export interface PeerRow {
  peerId: string;
  name: string;
  fingerprint: string;
  certificate: string;
  labels: Record<string, string>;
  lastSeen: string | null;
  status: unknown;
  created: string;
}

export interface EnrollmentRow {
  requestId: string;
  peerId: string;
  name: string;
  fingerprint: string;
  labels: Record<string, string>;
  request: unknown;
  state: 'pending' | 'accepted' | 'rejected';
  certificate: string | null;
  created: string;
}

export interface JobRow {
  jobId: string;
  operator: string;
  command: unknown;
  expiresAt: string;
  batch: number | null;
  maxFail: number | null;
  created: string;
}

/** A job without its command: what a summary shows, read by SQLite from the stored JSON. */
export interface JobHead extends Omit<JobRow, 'command'> {
  /** The signed command's payload action and audience target, for display (not checked here). */
  action: unknown;
  target: unknown;
}

export interface DeliveryRow {
  jobId: string;
  peerId: string;
  seq: number;
  state: DeliveryState;
  outcome: string | null;
  result: unknown;
  sent: number;
  updated: string;
}

export interface MembershipRow {
  group: string;
  peerId: string;
  op: 'put' | 'delete';
  envelope: unknown;
  acked: boolean;
  updated: string;
}

export type AuditRow = AuditEntry;

type Row = Record<string, SQLInputValue>;

/** A delivery with the audit entry holding its result (schema 4 on). */
const DELIVERY_SELECT =
  'SELECT d.*, a.data AS result_data FROM deliveries d LEFT JOIN audit a ON a.seq = d.result_seq';

/** WAL pages (4 KiB) past which the broker's own connection checkpoints (the default is 1000). */
const BACKSTOP_CHECKPOINT_PAGES = 16_384;

/**
 * A membership row the peer holds: a put it did not refuse, or a removal it refused. The
 * broker routes by this; the peer's signed status says what it really holds.
 */
const HELD = "(op = 'put' AND refusal IS NULL) OR (op = 'delete' AND refusal IS NOT NULL)";

const json = (v: unknown): string => JSON.stringify(v ?? null);
const parse = (v: SQLInputValue | undefined): unknown => (typeof v === 'string' ? JSON.parse(v) : null);
const str = (v: SQLInputValue | undefined): string => String(v);
const strOrNull = (v: SQLInputValue | undefined): string | null =>
  v === null || v === undefined ? null : String(v);
const numOrNull = (v: SQLInputValue | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);

function peerRow(r: Row): PeerRow {
  return {
    peerId: str(r.peer_id),
    name: str(r.name),
    fingerprint: str(r.fingerprint),
    certificate: str(r.certificate),
    labels: parse(r.labels) as Record<string, string>,
    lastSeen: strOrNull(r.last_seen),
    status: parse(r.status),
    created: str(r.created),
  };
}

function deliveryRow(r: Row): DeliveryRow {
  return {
    jobId: str(r.job_id),
    peerId: str(r.peer_id),
    seq: Number(r.seq),
    state: str(r.state) as DeliveryState,
    outcome: strOrNull(r.outcome),
    // Since schema 4 the envelope is stored once, in the audit entry `result_seq` names.
    result:
      r.result !== null && r.result !== undefined
        ? parse(r.result)
        : ((parse(r.result_data) as { envelope?: unknown } | null)?.envelope ?? null),
    sent: Number(r.sent),
    updated: str(r.updated),
  };
}

// json_extract reads two fields of the stored command in SQLite, so listing jobs never parses a
// command in JS: a layer.chunk job's command holds megabytes of base64 (40 of them made
// `mway jobs` miss its 10 s timeout under load).
const JOB_HEAD_SELECT = `SELECT job_id, operator, expires_at, batch, max_fail, created,
  json_extract(command, '$.payload.action') AS action,
  json_extract(command, '$.payload.audience.target') AS target FROM jobs`;

function jobHead(r: Row): JobHead {
  return {
    jobId: str(r.job_id),
    operator: str(r.operator),
    expiresAt: str(r.expires_at),
    batch: numOrNull(r.batch),
    maxFail: numOrNull(r.max_fail),
    created: str(r.created),
    action: r.action,
    target: r.target,
  };
}

function jobRow(r: Row): JobRow {
  return {
    jobId: str(r.job_id),
    operator: str(r.operator),
    command: parse(r.command),
    expiresAt: str(r.expires_at),
    batch: numOrNull(r.batch),
    maxFail: numOrNull(r.max_fail),
    created: str(r.created),
  };
}

export class BrokerDb {
  readonly db: DatabaseSync;
  readonly path: string;
  /** Prepared statements by their SQL: preparing compiles the statement, every call otherwise. */
  readonly #statements = new Map<string, StatementSync>();
  #checkpointer: WalCheckpointer | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA busy_timeout = 5000;');
    } catch (e) {
      throw new BrokerError('E_BROKER_DB', `Cannot open broker database ${path}: ${errorMessage(e)}`, {
        path,
        cause: e,
      });
    }
    try {
      // The version is checked (and a newer database refused) before anything is written.
      migrate(this.db, path);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
      // Checkpoints (copying the WAL into the database file, with its fsyncs) run on a thread of
      // their own, so a commit never waits for one; the connection here checkpoints only as a
      // backstop when the WAL grows far past what that thread keeps it at.
      if (path !== ':memory:') {
        this.db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
        this.#checkpointer = startWalCheckpointer(path, (m) =>
          process.emitWarning(`broker database ${path}: WAL checkpoint failed: ${m}`),
        );
      }
    } catch (e) {
      this.db.close();
      if (e instanceof BrokerError) throw e;
      throw new BrokerError('E_BROKER_DB', `Cannot open broker database ${path}: ${errorMessage(e)}`, {
        path,
        cause: e,
      });
    }
  }

  close(): void {
    this.#checkpointer?.stop();
    this.#checkpointer = undefined;
    this.#statements.clear();
    if (this.db.isOpen) this.db.close();
  }

  #sql(sql: string): StatementSync {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  /** Runs `f` in one transaction (nested calls join the outer one). */
  tx<T>(f: () => T): T {
    if (this.db.isTransaction) return f();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = f();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  // ---- peers ----

  upsertPeer(p: {
    peerId: string;
    name: string;
    fingerprint: string;
    certificate: string;
    now: string;
  }): void {
    this.#sql(
      `INSERT INTO peers (peer_id, name, fingerprint, certificate, last_seen, created) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name, fingerprint = excluded.fingerprint,
           certificate = excluded.certificate, last_seen = excluded.last_seen`,
    ).run(p.peerId, p.name, p.fingerprint, p.certificate, p.now, p.now);
  }

  setPeerLabels(peerId: string, labels: Record<string, string>): void {
    this.#sql('UPDATE peers SET labels = ? WHERE peer_id = ?').run(json(labels), peerId);
  }

  touchPeer(peerId: string, now: string): void {
    this.#sql('UPDATE peers SET last_seen = ? WHERE peer_id = ?').run(now, peerId);
  }

  setPeerStatus(peerId: string, status: unknown, now: string): void {
    this.#sql('UPDATE peers SET status = ?, last_seen = ? WHERE peer_id = ?').run(json(status), now, peerId);
  }

  /** A value of the `state` table (small broker state, e.g. NATS mode's answers cursor). */
  state(key: string): string | undefined {
    const r = this.#sql('SELECT value FROM state WHERE key = ?').get(key) as Row | undefined;
    return r === undefined ? undefined : str(r.value);
  }

  setState(key: string, value: string): void {
    this.#sql(
      'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  peer(peerId: string): PeerRow | undefined {
    const r = this.#sql('SELECT * FROM peers WHERE peer_id = ?').get(peerId) as Row | undefined;
    return r === undefined ? undefined : peerRow(r);
  }

  peerIds(): Set<string> {
    return new Set((this.#sql('SELECT peer_id FROM peers').all() as Row[]).map((r) => str(r.peer_id)));
  }

  peers(): PeerRow[] {
    return (this.#sql('SELECT * FROM peers ORDER BY peer_id').all() as Row[]).map(peerRow);
  }

  // ---- enrollment ----

  addEnrollment(e: Omit<EnrollmentRow, 'state' | 'certificate'>): void {
    this.#sql(
      `INSERT INTO enrollments (request_id, peer_id, name, fingerprint, labels, request, state, created)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (request_id) DO NOTHING`,
    ).run(e.requestId, e.peerId, e.name, e.fingerprint, json(e.labels), json(e.request), e.created);
  }

  enrollment(requestId: string): EnrollmentRow | undefined {
    const r = this.#sql('SELECT * FROM enrollments WHERE request_id = ?').get(requestId) as Row | undefined;
    if (r === undefined) return undefined;
    return {
      requestId: str(r.request_id),
      peerId: str(r.peer_id),
      name: str(r.name),
      fingerprint: str(r.fingerprint),
      labels: parse(r.labels) as Record<string, string>,
      request: parse(r.request),
      state: str(r.state) as EnrollmentRow['state'],
      certificate: strOrNull(r.certificate),
      created: str(r.created),
    };
  }

  enrollments(): EnrollmentRow[] {
    const ids = this.#sql('SELECT request_id FROM enrollments ORDER BY created').all() as Row[];
    return ids.map((r) => this.enrollment(str(r.request_id)) as EnrollmentRow);
  }

  /** Pending requests only: what the enrollment sweep looks at (accepted ones are history). */
  pendingEnrollments(): EnrollmentRow[] {
    const ids = this.#sql(
      "SELECT request_id FROM enrollments WHERE state = 'pending' ORDER BY created",
    ).all() as Row[];
    return ids.map((r) => this.enrollment(str(r.request_id)) as EnrollmentRow);
  }

  /** Forgets a request that is still pending (an accepted or rejected one is history). */
  dropPendingEnrollment(requestId: string): boolean {
    const r = this.#sql("DELETE FROM enrollments WHERE request_id = ? AND state = 'pending'").run(requestId);
    return Number(r.changes) > 0;
  }

  setEnrollmentState(requestId: string, state: EnrollmentRow['state'], certificate: string | null): void {
    this.#sql('UPDATE enrollments SET state = ?, certificate = ? WHERE request_id = ?').run(
      state,
      certificate,
      requestId,
    );
  }

  // ---- groups and memberships ----

  createGroup(name: string, now: string): boolean {
    return this.#sql('INSERT OR IGNORE INTO groups (name, created) VALUES (?, ?)').run(name, now).changes > 0;
  }

  /**
   * Deletes a group whose members all left it. Removals not yet acknowledged are kept, so a
   * peer that was offline still gets its signed removal when it returns.
   */
  deleteGroup(name: string): boolean {
    return this.tx(() => {
      this.#sql("DELETE FROM memberships WHERE group_name = ? AND NOT (op = 'delete' AND acked = 0)").run(
        name,
      );
      return this.#sql('DELETE FROM groups WHERE name = ?').run(name).changes > 0;
    });
  }

  hasGroup(name: string): boolean {
    return this.#sql('SELECT 1 FROM groups WHERE name = ?').get(name) !== undefined;
  }

  groups(): Array<{ group: string; members: string[]; created: string }> {
    const gs = this.#sql('SELECT * FROM groups ORDER BY name').all() as Row[];
    const q = this.#sql(
      `SELECT peer_id FROM memberships WHERE group_name = ? AND (${HELD}) ORDER BY peer_id`,
    );
    return gs.map((g) => ({
      group: str(g.name),
      created: str(g.created),
      members: (q.all(str(g.name)) as Row[]).map((r) => str(r.peer_id)),
    }));
  }

  putMembership(m: {
    group: string;
    peerId: string;
    op: 'put' | 'delete';
    envelope: unknown;
    now: string;
  }): void {
    this.#sql(
      `INSERT INTO memberships (group_name, peer_id, op, envelope, acked, updated) VALUES (?, ?, ?, ?, 0, ?)
         ON CONFLICT (group_name, peer_id) DO UPDATE SET op = excluded.op, envelope = excluded.envelope,
           acked = 0, refusal = NULL, updated = excluded.updated`,
    ).run(m.group, m.peerId, m.op, m.envelope === undefined ? null : json(m.envelope), m.now);
  }

  /** The peer answered: applied (`refusal` null) or refused with that code. False if nothing matched. */
  ackMembership(group: string, peerId: string, op: string, refusal: string | null = null): boolean {
    return (
      this.#sql(
        'UPDATE memberships SET acked = 1, refusal = ? WHERE group_name = ? AND peer_id = ? AND op = ? AND acked = 0',
      ).run(refusal, group, peerId, op).changes > 0
    );
  }

  /** Peers that hold a membership of `group` as far as the broker knows (see HELD). */
  holders(group: string): string[] {
    return (
      this.#sql(`SELECT peer_id FROM memberships WHERE group_name = ? AND (${HELD}) ORDER BY peer_id`).all(
        group,
      ) as Row[]
    ).map((r) => str(r.peer_id));
  }

  /** Peers whose signed ack says they hold `group` (a put applied, not refused). */
  ackedHolders(group: string): string[] {
    return (
      this.#sql(
        "SELECT peer_id FROM memberships WHERE group_name = ? AND op = 'put' AND acked = 1 AND refusal IS NULL ORDER BY peer_id",
      ).all(group) as Row[]
    ).map((r) => str(r.peer_id));
  }

  unackedMemberships(peerId: string): MembershipRow[] {
    return (
      this.#sql('SELECT * FROM memberships WHERE peer_id = ? AND acked = 0 ORDER BY updated').all(
        peerId,
      ) as Row[]
    ).map((r) => ({
      group: str(r.group_name),
      peerId: str(r.peer_id),
      op: str(r.op) as 'put' | 'delete',
      envelope: parse(r.envelope),
      acked: Number(r.acked) === 1,
      updated: str(r.updated),
    }));
  }

  groupsOf(peerId: string): string[] {
    return (
      this.#sql(`SELECT group_name FROM memberships WHERE peer_id = ? AND (${HELD}) ORDER BY group_name`).all(
        peerId,
      ) as Row[]
    ).map((r) => str(r.group_name));
  }

  // ---- jobs and deliveries ----

  addJob(j: JobRow, targets: readonly string[], window: number): void {
    this.tx(() => {
      this.#sql(
        'INSERT INTO jobs (job_id, operator, command, expires_at, batch, max_fail, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(j.jobId, j.operator, json(j.command), j.expiresAt, j.batch, j.maxFail, j.created);
      const ins = this.#sql(
        'INSERT INTO deliveries (job_id, peer_id, seq, state, updated) VALUES (?, ?, ?, ?, ?)',
      );
      targets.forEach((p, i) => {
        ins.run(j.jobId, p, i, i < window ? 'pending' : 'queued', j.created);
      });
    });
  }

  job(jobId: string): JobRow | undefined {
    const r = this.#sql('SELECT * FROM jobs WHERE job_id = ?').get(jobId) as Row | undefined;
    return r === undefined ? undefined : jobRow(r);
  }

  jobHead(jobId: string): JobHead | undefined {
    const r = this.#sql(`${JOB_HEAD_SELECT} WHERE job_id = ?`).get(jobId) as Row | undefined;
    return r === undefined ? undefined : jobHead(r);
  }

  /** The newest `limit` jobs, without their commands. */
  jobHeads(limit: number): JobHead[] {
    return (this.#sql(`${JOB_HEAD_SELECT} ORDER BY created DESC LIMIT ?`).all(limit) as Row[]).map(jobHead);
  }

  deliveries(jobId: string): DeliveryRow[] {
    return (this.#sql(`${DELIVERY_SELECT} WHERE d.job_id = ? ORDER BY d.seq`).all(jobId) as Row[]).map(
      deliveryRow,
    );
  }

  /** How many peers a job targets (without reading their results). */
  deliveryCount(jobId: string): number {
    return Number((this.#sql('SELECT count(*) AS n FROM deliveries WHERE job_id = ?').get(jobId) as Row).n);
  }

  delivery(jobId: string, peerId: string): DeliveryRow | undefined {
    const r = this.#sql(`${DELIVERY_SELECT} WHERE d.job_id = ? AND d.peer_id = ?`).get(jobId, peerId) as
      | Row
      | undefined;
    return r === undefined ? undefined : deliveryRow(r);
  }

  /** Pending deliveries of one peer (released by the batch window, not answered, not expired). */
  pendingFor(peerId: string, now: string): Array<DeliveryRow & { command: unknown; expiresAt: string }> {
    return (
      this.#sql(
        `SELECT d.*, j.command, j.expires_at FROM deliveries d JOIN jobs j USING (job_id)
           WHERE d.peer_id = ? AND d.state = 'pending' AND j.expires_at > ? ORDER BY j.created, d.job_id`,
      ).all(peerId, now) as Row[]
    ).map((r) => ({ ...deliveryRow(r), command: parse(r.command), expiresAt: str(r.expires_at) }));
  }

  pendingList(
    peerId?: string,
  ): Array<{ peerId: string; jobId: string; expiresAt: string; state: string; sent: number }> {
    const sql = `SELECT d.peer_id, d.job_id, d.state, d.sent, j.expires_at FROM deliveries d JOIN jobs j USING (job_id)
      WHERE d.state IN ('pending', 'queued') ${peerId === undefined ? '' : 'AND d.peer_id = ?'} ORDER BY j.created, d.seq`;
    const rows = (peerId === undefined ? this.#sql(sql).all() : this.#sql(sql).all(peerId)) as Row[];
    return rows.map((r) => ({
      peerId: str(r.peer_id),
      jobId: str(r.job_id),
      expiresAt: str(r.expires_at),
      state: str(r.state),
      sent: Number(r.sent),
    }));
  }

  markSent(jobId: string, peerId: string, now: string): void {
    this.#sql('UPDATE deliveries SET sent = sent + 1, updated = ? WHERE job_id = ? AND peer_id = ?').run(
      now,
      jobId,
      peerId,
    );
  }

  /**
   * Records a result whose envelope is audit entry `auditSeq` (stored there, not again here);
   * false when the delivery is unknown or already finished (duplicate).
   */
  setResult(jobId: string, peerId: string, outcome: string, auditSeq: number, now: string): boolean {
    return (
      this.#sql(
        `UPDATE deliveries SET state = 'done', outcome = ?, result = NULL, result_seq = ?, updated = ?
           WHERE job_id = ? AND peer_id = ? AND state IN ('pending', 'queued', 'cancelled')`,
      ).run(outcome, auditSeq, now, jobId, peerId).changes > 0
    );
  }

  /** Whether a result from `peerId` for `jobId` would be recorded (not a duplicate, targeted). */
  awaitsResult(jobId: string, peerId: string): boolean {
    return (
      this.#sql(
        "SELECT 1 FROM deliveries WHERE job_id = ? AND peer_id = ? AND state IN ('pending', 'queued', 'cancelled')",
      ).get(jobId, peerId) !== undefined
    );
  }

  /** Peers of a job whose delivery is pending (released by the batch window, not answered). */
  pendingPeers(jobId: string): Set<string> {
    return new Set(
      (
        this.#sql("SELECT peer_id FROM deliveries WHERE job_id = ? AND state = 'pending'").all(jobId) as Row[]
      ).map((r) => str(r.peer_id)),
    );
  }

  /** Moves deliveries of jobs past expiry to `expired`; returns them. */
  expire(now: string): Array<{ jobId: string; peerId: string }> {
    return this.tx(() => {
      const rows = this.#sql(
        `SELECT d.job_id, d.peer_id FROM deliveries d JOIN jobs j USING (job_id)
           WHERE d.state IN ('pending', 'queued') AND j.expires_at <= ?`,
      ).all(now) as Row[];
      const up = this.#sql(
        "UPDATE deliveries SET state = 'expired', updated = ? WHERE job_id = ? AND peer_id = ?",
      );
      for (const r of rows) up.run(now, str(r.job_id), str(r.peer_id));
      return rows.map((r) => ({ jobId: str(r.job_id), peerId: str(r.peer_id) }));
    });
  }

  /** Counts per state of one job. */
  counts(jobId: string): Record<DeliveryState | 'failed' | 'ok', number> {
    const out = { queued: 0, pending: 0, done: 0, expired: 0, skipped: 0, cancelled: 0, failed: 0, ok: 0 };
    const rows = this.#sql(
      'SELECT state, outcome, count(*) AS n FROM deliveries WHERE job_id = ? GROUP BY state, outcome',
    ).all(jobId) as Row[];
    for (const r of rows) {
      const s = str(r.state) as DeliveryState;
      out[s] += Number(r.n);
      if (s === 'done') {
        if (r.outcome === 'ok') out.ok += Number(r.n);
        else out.failed += Number(r.n);
      }
    }
    return out;
  }

  /** Releases up to `n` queued deliveries of a job (sliding batch window); returns their peers. */
  release(jobId: string, n: number, now: string): string[] {
    if (n <= 0) return [];
    return this.tx(() => {
      const rows = this.#sql(
        "SELECT peer_id FROM deliveries WHERE job_id = ? AND state = 'queued' ORDER BY seq LIMIT ?",
      ).all(jobId, n) as Row[];
      const up = this.#sql(
        "UPDATE deliveries SET state = 'pending', updated = ? WHERE job_id = ? AND peer_id = ?",
      );
      for (const r of rows) up.run(now, jobId, str(r.peer_id));
      return rows.map((r) => str(r.peer_id));
    });
  }

  /**
   * Cancels what of a job has not been answered: its queued and pending deliveries stop being
   * (re)delivered. A result that still arrives (the peer had it already) is recorded over it.
   */
  cancelOpen(jobId: string, now: string): string[] {
    return this.tx(() => {
      const rows = this.#sql(
        "SELECT peer_id FROM deliveries WHERE job_id = ? AND state IN ('queued', 'pending') ORDER BY seq",
      ).all(jobId) as Row[];
      this.#sql(
        "UPDATE deliveries SET state = 'cancelled', updated = ? WHERE job_id = ? AND state IN ('queued', 'pending')",
      ).run(now, jobId);
      return rows.map((r) => str(r.peer_id));
    });
  }

  /** Marks every queued delivery of a job skipped (max-fail reached); returns their peers. */
  skipQueued(jobId: string, now: string): string[] {
    return this.tx(() => {
      const rows = this.#sql("SELECT peer_id FROM deliveries WHERE job_id = ? AND state = 'queued'").all(
        jobId,
      ) as Row[];
      this.#sql(
        "UPDATE deliveries SET state = 'skipped', updated = ? WHERE job_id = ? AND state = 'queued'",
      ).run(now, jobId);
      return rows.map((r) => str(r.peer_id));
    });
  }

  // ---- audit ----

  /** Sequence number and hash of the last entry (without parsing its data). */
  auditTip(): { seq: number; hash: string } | undefined {
    const r = this.#sql('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
    return r === undefined ? undefined : { seq: Number(r.seq), hash: str(r.hash) };
  }

  /** Batch settings of a job without parsing its command. */
  jobBatch(jobId: string): { batch: number | null; maxFail: number | null } | undefined {
    const r = this.#sql('SELECT batch, max_fail FROM jobs WHERE job_id = ?').get(jobId) as Row | undefined;
    return r === undefined ? undefined : { batch: numOrNull(r.batch), maxFail: numOrNull(r.max_fail) };
  }

  auditHead(): AuditRow | undefined {
    const r = this.#sql('SELECT * FROM audit ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
    return r === undefined ? undefined : auditRow(r);
  }

  /** `dataText`: `a.data` already serialized (its canonical text, audit-log.ts). */
  appendAudit(a: AuditRow, dataText?: string): void {
    this.#sql(
      'INSERT INTO audit (seq, time, kind, actor, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(a.seq, a.time, a.kind, a.actor, dataText ?? json(a.data), a.prev, a.hash);
  }

  audit(from: number, limit: number): AuditRow[] {
    return (
      this.#sql('SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?').all(from, limit) as Row[]
    ).map(auditRow);
  }
}

function auditRow(r: Row): AuditRow {
  return {
    seq: Number(r.seq),
    time: str(r.time),
    kind: str(r.kind),
    actor: str(r.actor),
    data: parse(r.data),
    prev: str(r.prev),
    hash: str(r.hash),
  };
}
