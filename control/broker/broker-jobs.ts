// Job bookkeeping in the broker: the per-peer pending queue (a command stays pending for a
// peer until its result arrives or the command expires), redelivery whenever the peer
// comes back online, the sliding batch window and failure budget, the expiry sweep, and the
// job events streamed to watching operators. Every state change is written to the database
// (and the audit chain) before anything is sent, so a broker restart resumes exactly.
import type { BrokerContext, Session } from './broker-context.ts';
import { errorMessage } from '../../common/index.ts';
import { canonicalText, type Envelope } from '../../keys/index.ts';
import { ControlError, encodeFrame, encodeFrameWith, message, type Outcome } from '../wire/index.ts';

export interface SubmitInput {
  jobId: string;
  command: unknown;
  targets: readonly string[];
  expiresAt: string;
  batch?: number;
  maxFail?: number;
  /** The job this one cancels (its command is a signed `job.cancel`). */
  cancels?: string;
}

export interface JobSummary {
  jobId: string;
  /** Read from the signed command's payload for display (the envelope itself is not checked here). */
  action: string;
  target: string;
  operator: string;
  created: string;
  expiresAt: string;
  batch: number | null;
  maxFail: number | null;
  targeted: number;
  succeeded: number;
  failed: number;
  pending: number;
  expired: number;
  skipped: number;
  cancelled: number;
  /** `running` while any delivery may still produce a result. */
  state: 'running' | 'finished';
}

/**
 * Bytes queued on a watcher's socket past which its job events wait in the broker instead, as
 * references read back from the database when the socket drains. A large job's events (10,000
 * results of ~14 KB) outrun an operator that verifies each one; queued in the socket they passed
 * the connection's 64 MiB limit (MAX_WRITE_BACKLOG) and the operator was cut off mid-job.
 */
export const WATCH_HIGH_WATER = 4 * 1024 * 1024;

/** A job event held back for a watcher: a result is read back from the database when sent. */
interface HeldEvent {
  jobId: string;
  fields: Record<string, unknown>;
  /** The event carries this delivery's stored result (not held in memory). */
  resultOf?: string;
}

/** A result received and not yet committed (BrokerJobs.flushResults). */
interface PendingResult {
  peerId: string;
  actor: string;
  jobId: string;
  outcome: Outcome;
  result: unknown;
  at: Date;
}

export class BrokerJobs {
  readonly #b: BrokerContext;
  readonly #results: PendingResult[] = [];
  readonly #watchers = new Map<string, Set<Session>>();
  readonly #memberWatchers = new Map<string, Set<Session>>();
  /** Watchers whose socket is past WATCH_HIGH_WATER: their events in order, until it drains. */
  readonly #held = new Map<Session, HeldEvent[]>();

  constructor(b: BrokerContext) {
    this.#b = b;
  }

  submit(
    s: Session,
    x: SubmitInput,
  ): { jobId: string; targets: string[]; unknown: string[]; cancelled?: string[] } {
    const b = this.#b;
    const now = b.now();
    const exp = Date.parse(x.expiresAt);
    if (Number.isNaN(exp))
      throw new ControlError('E_PROTOCOL', `expiresAt ${x.expiresAt} is not a time`, { path: 'expiresAt' });
    if (exp <= now.getTime()) {
      throw new ControlError(
        'E_COMMAND_EXPIRED',
        `Job ${x.jobId} expired at ${x.expiresAt} before it was submitted`,
      );
    }
    const env = x.command as { type?: unknown };
    if (env.type !== 'command')
      throw new ControlError('E_PROTOCOL', 'command-submit carries an envelope that is not a command');
    const targets = [...new Set(x.targets)];
    for (const [name, v] of [
      ['batch', x.batch],
      ['maxFail', x.maxFail],
    ] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < (name === 'batch' ? 1 : 0))) {
        throw new ControlError(
          'E_PROTOCOL',
          `${name} must be a ${name === 'batch' ? 'positive' : 'non-negative'} integer`,
          {
            path: name,
          },
        );
      }
    }
    const existing = b.db.job(x.jobId);
    if (existing !== undefined) {
      // A retried submit of the same signed command is idempotent; another command under the
      // same id is refused (ids are 128-bit random, so this is a replay or a bug).
      if (JSON.stringify(existing.command) !== JSON.stringify(x.command)) {
        throw new ControlError('E_JOB_EXISTS', `Job ${x.jobId} already exists with another command`);
      }
    } else {
      b.db.tx(() => {
        b.db.addJob(
          {
            jobId: x.jobId,
            operator: s.identity,
            command: x.command,
            expiresAt: new Date(exp).toISOString(),
            batch: x.batch ?? null,
            maxFail: x.maxFail ?? null,
            created: now.toISOString(),
          },
          targets,
          x.batch ?? targets.length,
        );
        b.audit.append('command', s.actor, { jobId: x.jobId, targets, envelope: x.command }, now);
      });
    }
    let cancelled: string[] | undefined;
    if (x.cancels !== undefined) {
      if (b.db.job(x.cancels) === undefined)
        throw new ControlError('E_JOB_UNKNOWN', `No job ${x.cancels} to cancel`);
      // What the broker still holds is simply not delivered any more; the signed cancellation
      // then reaches the peers, so one that has it queued (or a broker that replays it) refuses it.
      cancelled = b.db.cancelOpen(x.cancels, now.toISOString());
      b.audit.append('job-cancel', s.actor, { jobId: x.cancels, by: x.jobId, peers: cancelled }, now);
      for (const p of cancelled)
        this.#emit(x.cancels, { jobId: x.cancels, peerId: p, outcome: 'failed', state: 'cancelled' });
    }
    const known = b.db.peerIds();
    this.#deliver(x.jobId, targets);
    return {
      jobId: x.jobId,
      targets,
      unknown: targets.filter((p) => !known.has(p)),
      ...(cancelled === undefined ? {} : { cancelled }),
    };
  }

  /** Sends a job's command to those of `peers` that are online and still pending. */
  #deliver(jobId: string, peers: readonly string[]): void {
    const b = this.#b;
    const j = b.db.job(jobId);
    if (j === undefined || Date.parse(j.expiresAt) <= b.now().getTime()) return;
    // In NATS mode every peer has a mailbox (doc/nats.md): what is stored there reaches it
    // when it is online, or when it comes back.
    const nats = b.nats;
    const pending = b.db.pendingPeers(jobId);
    const online = peers.filter((p) => (nats !== undefined || b.peers.has(p)) && pending.has(p));
    if (online.length === 0) return;
    const now = b.now().toISOString();
    b.db.tx(() => {
      for (const p of online) b.db.markSent(jobId, p, now);
    });
    if (nats !== undefined) {
      const group = this.#wholeGroup(jobId, j.command, online);
      if (group !== undefined) {
        void nats.deliverGroup(group, jobId, j.command as Envelope, j.expiresAt).catch((e: unknown) =>
          b.log('error', `broker: job ${jobId} not stored for group ${group} in NATS: ${errorMessage(e)}`, {
            job: jobId,
            group,
          }),
        );
        return;
      }
      for (const p of online)
        void nats.deliver(p, jobId, j.command as Envelope, j.expiresAt).catch((e: unknown) =>
          b.log('error', `broker: job ${jobId} not stored for ${p} in NATS: ${errorMessage(e)}`, {
            job: jobId,
            peer: p,
          }),
        );
      return;
    }
    const m = message('command-deliver', { jobId, command: j.command, expiresAt: j.expiresAt });
    const frame = encodeFrame(m);
    for (const p of online) {
      const s = b.peers.get(p);
      if (s !== undefined) b.sendFrame(s, m, frame);
    }
  }

  /**
   * NATS mode stores a job once on its group's subject instead of once per peer when that
   * reaches exactly the same peers: the command targets one group (`group:G`), this delivery is
   * to every one of its targets at once (no batch window), and each of them has acknowledged
   * its membership of G (a signed ack, sent after the peer applied it, so it reads G's subject
   * from then on). Anything else (a batch, a label, several groups, a member that has not
   * acked yet) goes per peer.
   */
  #wholeGroup(jobId: string, command: unknown, peers: readonly string[]): string | undefined {
    const audience = (command as { payload?: { audience?: { target?: unknown; groups?: unknown } } }).payload
      ?.audience;
    const target = typeof audience?.target === 'string' ? audience.target : '';
    const m = /^group:([^,!*?]+)$/.exec(target);
    const group = m?.[1];
    if (group === undefined || !Array.isArray(audience?.groups) || !audience.groups.includes(group))
      return undefined;
    const b = this.#b;
    if (peers.length === 0 || peers.length !== b.db.deliveryCount(jobId)) return undefined;
    const holders = new Set(b.db.ackedHolders(group));
    return peers.every((p) => holders.has(p)) ? group : undefined;
  }

  /** A peer (re)connected: send every pending command and unacknowledged membership. */
  onPeerOnline(peerId: string): void {
    const b = this.#b;
    const s = b.peers.get(peerId);
    if (s === undefined) return;
    const now = b.now().toISOString();
    for (const d of b.db.pendingFor(peerId, now)) {
      b.db.markSent(d.jobId, peerId, now);
      b.send(s, message('command-deliver', { jobId: d.jobId, command: d.command, expiresAt: d.expiresAt }));
    }
    for (const m of b.db.unackedMemberships(peerId)) this.sendMembership(s, m.group, m.op, m.envelope);
  }

  sendMembership(s: Session, group: string, op: 'put' | 'delete', envelope: unknown): void {
    this.#b.send(
      s,
      message('membership-deliver', {
        group,
        peerId: s.identity,
        op,
        ...(envelope === null || envelope === undefined ? {} : { membership: envelope }),
      }),
    );
  }

  /** A peer's signed result: recorded once, audited, streamed to watchers, batch advanced. */
  onResult(s: Session, jobId: string, outcome: Outcome, result: unknown): void {
    this.onPeerResult(s.identity, s.actor, jobId, outcome, result);
  }

  /**
   * The same, for a result whose peer is known otherwise (NATS mode: by its signature).
   * Results are committed in groups: the ones that arrive before the event loop next checks
   * (a thousand peers answering one command arrive together) share one transaction, then go
   * to the watchers. Nothing about them is sent before that commit, and the broker commits
   * what is waiting before it handles any other message (flushResults), so no reader sees the
   * database behind the results it was sent.
   */
  onPeerResult(peerId: string, actor: string, jobId: string, outcome: Outcome, result: unknown): void {
    this.#results.push({ peerId, actor, jobId, outcome, result, at: this.#b.now() });
    if (this.#results.length === 1) setImmediate(() => this.flushResults());
  }

  /** Commits the results received so far (one transaction), then streams them and advances batches. */
  flushResults(): void {
    const batch = this.#results.splice(0);
    if (batch.length === 0) return;
    const b = this.#b;
    // The envelope is stored once, in the audit entry; the delivery names that entry. Its
    // canonical text is made once: the audit entry's hash and row, and the watchers' event,
    // are spliced from it (a ~14 KB envelope written out three times was a third of the
    // broker's CPU per result).
    const texts: Array<string | undefined> = [];
    const record = (r: PendingResult, i: number): boolean => {
      if (!b.db.awaitsResult(r.jobId, r.peerId)) return false;
      const data = { jobId: r.jobId, peerId: r.peerId, outcome: r.outcome, envelope: r.result };
      const envelope = canonicalText(r.result);
      texts[i] = envelope;
      // {envelope, jobId, outcome, peerId}: the members in code-unit order, envelope first.
      const rest = canonicalText({ jobId: r.jobId, outcome: r.outcome, peerId: r.peerId });
      const entry = b.audit.append('result', r.actor, data, r.at, `{"envelope":${envelope},${rest.slice(1)}`);
      return b.db.setResult(r.jobId, r.peerId, r.outcome, entry.seq, r.at.toISOString());
    };
    let first: boolean[];
    try {
      first = b.db.tx(() => batch.map((r, i) => record(r, i)));
    } catch {
      // One result the database refuses must not lose the others: each in its own transaction.
      first = batch.map((r, i) => {
        try {
          return b.db.tx(() => record(r, i));
        } catch (e) {
          b.log(
            'error',
            `broker: result of ${r.peerId} for job ${r.jobId} not recorded: ${errorMessage(e)}`,
            {
              job: r.jobId,
              peer: r.peerId,
            },
          );
          return false;
        }
      });
    }
    const advanced = new Set<string>();
    // The watchers' sockets are corked while the group's events are written: one TLS write of
    // many records instead of one per result.
    const corked = new Set<Session>();
    for (const r of batch) for (const s of this.#watchers.get(r.jobId) ?? []) corked.add(s);
    for (const s of corked) s.conn.socket.cork();
    try {
      batch.forEach((r, i) => {
        if (first[i] !== true) {
          // Duplicate (redelivery after a restart) or a result for a job this peer was never sent.
          b.log(
            'info',
            `broker: result of ${r.peerId} for job ${r.jobId} ignored (duplicate or not targeted)`,
            { job: r.jobId, peer: r.peerId },
          );
          return;
        }
        this.#emit(
          r.jobId,
          { jobId: r.jobId, peerId: r.peerId, outcome: r.outcome, result: r.result },
          texts[i],
        );
        advanced.add(r.jobId);
      });
    } finally {
      for (const s of corked) s.conn.socket.uncork();
    }
    for (const jobId of advanced) this.#advance(jobId);
  }

  /** Keeps the batch window full and stops the rollout once the failure budget is spent. */
  #advance(jobId: string): void {
    const b = this.#b;
    const j = b.db.jobBatch(jobId);
    if (j === undefined || j.batch === null) return;
    const now = b.now().toISOString();
    const c = b.db.counts(jobId);
    if (j.maxFail !== null && c.failed + c.expired > j.maxFail) {
      for (const p of b.db.skipQueued(jobId, now))
        this.#emit(jobId, { jobId, peerId: p, outcome: 'failed', state: 'skipped' });
      return;
    }
    this.#deliver(jobId, b.db.release(jobId, j.batch - c.pending, now));
  }

  /** Expires deliveries past their command's expiry; tells watchers. */
  sweep(): void {
    const b = this.#b;
    this.flushResults();
    let expired: Array<{ jobId: string; peerId: string }>;
    try {
      expired = b.db.expire(b.now().toISOString());
    } catch (e) {
      b.log('error', `broker: expiry sweep failed: ${(e as Error).message}`);
      return;
    }
    for (const x of expired) this.#emit(x.jobId, { ...x, outcome: 'failed', state: 'expired' });
  }

  watch(s: Session, jobId: string): void {
    let set = this.#watchers.get(jobId);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(jobId, set);
    }
    set.add(s);
  }

  unwatchAll(s: Session): void {
    this.#held.delete(s);
    for (const map of [this.#watchers, this.#memberWatchers]) {
      for (const [id, set] of map) {
        set.delete(s);
        if (set.size === 0) map.delete(id);
      }
    }
  }

  /** The operator that sent a membership hears the peer's answer (`membership-event`). */
  watchMembership(s: Session, group: string, peerId: string): void {
    const k = `${group}\0${peerId}`;
    let set = this.#memberWatchers.get(k);
    if (set === undefined) {
      set = new Set();
      this.#memberWatchers.set(k, set);
    }
    set.add(s);
  }

  /** A peer's answer to a membership statement (over TLS, or verified from NATS). */
  onMembershipAck(peerId: string, group: string, op: string, refusal: string | null, ack: unknown): void {
    if (this.#b.db.ackMembership(group, peerId, op, refusal)) {
      this.emitMembership(group, peerId, {
        op,
        ok: refusal === null,
        ...(refusal === null ? {} : { code: refusal }),
        ...(ack === undefined ? {} : { ack }),
      });
    }
  }

  emitMembership(group: string, peerId: string, fields: Record<string, unknown>): void {
    const k = `${group}\0${peerId}`;
    const set = this.#memberWatchers.get(k);
    if (set === undefined) return;
    this.#memberWatchers.delete(k);
    for (const s of set) this.#b.send(s, message('membership-event', { group, peerId, ...fields }));
  }

  /** `resultText`: the canonical text of `fields.result`, spliced into the frame as it is. */
  #emit(jobId: string, fields: Record<string, unknown>, resultText?: string): void {
    const set = this.#watchers.get(jobId);
    if (set === undefined) return;
    const m = message('job-event', fields);
    let frame: Buffer | undefined;
    for (const s of set) {
      if (this.#hold(s, jobId, fields)) continue;
      if (resultText === undefined) {
        this.#b.send(s, m);
        continue;
      }
      if (frame === undefined) {
        const { result: _, ...rest } = fields;
        frame = encodeFrameWith(message('job-event', rest), 'result', resultText);
      }
      this.#b.sendFrame(s, m, frame);
    }
  }

  /**
   * Whether the event waits for `s` (its socket is backed up, or earlier events wait): then it
   * is queued in order, a result as a reference to its stored delivery, and sent on 'drain'.
   */
  #hold(s: Session, jobId: string, fields: Record<string, unknown>): boolean {
    let q = this.#held.get(s);
    if (q === undefined) {
      if (s.conn.closed || s.conn.socket.writableLength <= WATCH_HIGH_WATER) return false;
      q = [];
      this.#held.set(s, q);
      s.conn.socket.once('drain', () => this.#release(s));
    }
    const { result, ...rest } = fields;
    q.push(
      result === undefined ? { jobId, fields } : { jobId, fields: rest, resultOf: String(fields.peerId) },
    );
    return true;
  }

  /** Sends a drained watcher's held events until its socket backs up again (then waits again). */
  #release(s: Session): void {
    const q = this.#held.get(s);
    if (q === undefined) return;
    const b = this.#b;
    while (q.length > 0) {
      if (s.conn.closed) {
        this.#held.delete(s);
        return;
      }
      if (s.conn.socket.writableLength > WATCH_HIGH_WATER) {
        s.conn.socket.once('drain', () => this.#release(s));
        return;
      }
      const e = q.shift() as HeldEvent;
      if (e.resultOf === undefined) {
        b.send(s, message('job-event', e.fields));
        continue;
      }
      const d = b.db.delivery(e.jobId, e.resultOf);
      if (d === undefined || d.result === null) continue;
      const m = message('job-event', { ...e.fields, result: d.result });
      b.sendFrame(s, m, encodeFrameWith(message('job-event', e.fields), 'result', canonicalText(d.result)));
    }
    this.#held.delete(s);
  }

  summary(jobId: string): JobSummary | undefined {
    const b = this.#b;
    const j = b.db.jobHead(jobId);
    if (j === undefined) return undefined;
    const c = b.db.counts(jobId);
    const targeted = c.queued + c.pending + c.done + c.expired + c.skipped + c.cancelled;
    return {
      jobId,
      action: typeof j.action === 'string' ? j.action : '?',
      target: typeof j.target === 'string' ? j.target : '?',
      operator: j.operator,
      created: j.created,
      expiresAt: j.expiresAt,
      batch: j.batch,
      maxFail: j.maxFail,
      targeted,
      succeeded: c.ok,
      failed: c.failed,
      pending: c.pending + c.queued,
      expired: c.expired,
      skipped: c.skipped,
      cancelled: c.cancelled,
      state: c.pending + c.queued === 0 ? 'finished' : 'running',
    };
  }
}
