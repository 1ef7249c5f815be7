// The broker core (`milkywaysrvd`): accepts TLS connections, authenticates peers and
// operators by certificate, routes signed commands to peers and their signed results back,
// and keeps everything in the database before acknowledging it (broker-db.ts). The broker
// is untrusted by design: it never interprets an envelope beyond the routing fields next to
// it, and agents verify everything themselves. Request handlers live in broker-requests.ts,
// job bookkeeping (pending queue, batch window, expiry) in broker-jobs.ts; both see the
// broker only as the BrokerContext of broker-context.ts.
import type { SecureContextOptions } from 'node:tls';
import { errorMessage, isMilkyWayError, type LogFields } from '../../common/index.ts';
import { type Certificate, type Crl, checkCrls, parseCertificates, verifyChain } from '../../keys/index.ts';
import { AuditLog } from './audit-log.ts';
import type { BrokerContext, Session, SessionRole } from './broker-context.ts';
import type { HealthReport } from './health-endpoint.ts';
import { BrokerDb } from './broker-db.ts';
import { BrokerJobs } from './broker-jobs.ts';
import { sweepEnrollments } from './enrollment-sweep.ts';
import { handleRequest } from './broker-requests.ts';
import { startNatsBridge } from './nats-bridge.ts';
import { NatsRelay } from './nats-relay.ts';
import {
  ANONYMOUS_KINDS,
  ANY_KINDS,
  type Connection,
  ControlError,
  listenTls,
  type Message,
  message,
  OPERATOR_KINDS,
  PEER_KINDS,
} from '../wire/index.ts';

/**
 * A test-only hook through which every message the broker sends passes: return the messages
 * to send instead (`[]` drops, two copies replay, an edited copy tampers, a later-resolving
 * promise delays). The hostile-broker tests use it; a real broker has none.
 */
export type OutgoingHook = (o: {
  to: SessionRole;
  identity: string;
  message: Message;
}) => Message[] | Promise<Message[]>;

export interface BrokerOptions {
  /** SQLite file (`:memory:` for throwaway tests). */
  dbPath: string;
  /** keys/ tlsContextOptions() of the broker identity. */
  tls: SecureContextOptions;
  /** The broker's own leaf certificate (its fingerprint goes to hello replies and mDNS). */
  certificate: Certificate;
  /** User roots whose peers and operators may connect. */
  anchors: readonly Certificate[];
  /** Revocation lists: a revoked peer or operator is refused at hello. */
  crls?: readonly Crl[];
  host?: string;
  port?: number;
  /** How often pending deliveries past expiry are swept (ms, default 1000). */
  expirySweepMs?: number;
  now?: () => Date;
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: LogFields) => void;
  hooks?: { outgoing?: OutgoingHook };
  /**
   * NATS mode (doc/nats.md): peers' commands go to their mailboxes in a JetStream cluster and
   * their signed results and statuses come back from it; operators still connect over TLS.
   */
  nats?: { servers: string[]; replicas?: number; nkey?: string; ca?: string };
}

/** How often the timer drops stale enrollment requests (listing them always does). */
const ENROLL_SWEEP_MS = 60_000;

export class Broker implements BrokerContext {
  readonly db: BrokerDb;
  readonly audit: AuditLog;
  readonly jobs: BrokerJobs;
  readonly options: BrokerOptions;
  readonly fingerprint: string;
  /** Connected peers by peer id (one session each; a new connection replaces the old). */
  readonly peers = new Map<string, Session>();
  readonly sessions = new Set<Session>();
  port = 0;
  #close: (() => Promise<void>) | undefined;
  #listening: (() => boolean) | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #closing = false;
  #crls: readonly Crl[] | undefined;
  nats: NatsRelay | undefined;
  #bridge: { stop(): void } | undefined;

  private constructor(o: BrokerOptions) {
    this.options = o;
    this.fingerprint = o.certificate.fingerprint;
    this.#crls = o.crls;
    this.db = new BrokerDb(o.dbPath);
    this.audit = new AuditLog(this.db);
    this.jobs = new BrokerJobs(this);
  }

  /** Opens the database, listens, and starts the expiry sweep. */
  static async start(o: BrokerOptions): Promise<Broker> {
    const b = new Broker(o);
    try {
      const l = await listenTls({
        tls: o.tls,
        ...(o.host === undefined ? {} : { host: o.host }),
        ...(o.port === undefined ? {} : { port: o.port }),
        onConnection: (c) => b.#accept(c),
      });
      b.port = l.port;
      b.#close = l.close;
      b.#listening = () => l.server.listening;
    } catch (e) {
      b.db.close();
      throw e;
    }
    if (o.nats !== undefined) {
      try {
        b.nats = await NatsRelay.open({
          servers: o.nats.servers,
          ...(o.nats.nkey === undefined ? {} : { nkey: o.nats.nkey }),
          ...(o.nats.ca === undefined ? {} : { ca: o.nats.ca }),
        });
        await b.nats.ensureStreams(o.nats.replicas ?? 3);
        b.#bridge = await startNatsBridge(b, b.nats, b.jobs);
      } catch (e) {
        await b.close();
        if (e instanceof ControlError && e.code === 'E_NATS_CREDENTIALS') throw e;
        throw new ControlError(
          'E_NATS_UNAVAILABLE',
          `Cannot set up NATS mode on ${o.nats.servers.join(', ')}: ${errorMessage(e)}`,
          { cause: e },
        );
      }
    }
    b.#sweep = setInterval(() => {
      b.jobs.sweep();
      b.#sweepEnrollments();
    }, o.expirySweepMs ?? 1000);
    b.#sweep.unref();
    // Expire what went stale while the broker was down before anything is delivered.
    b.jobs.sweep();
    b.#sweepEnrollments();
    return b;
  }

  /** When the timer last swept enrollments: a day's window needs no sub-second checks. */
  #enrollSweptAt = Number.NEGATIVE_INFINITY;

  #sweepEnrollments(): void {
    const t = this.now().getTime();
    if (t - this.#enrollSweptAt < ENROLL_SWEEP_MS) return;
    this.#enrollSweptAt = t;
    try {
      sweepEnrollments(this);
    } catch (e) {
      this.log('error', `broker: enrollment sweep failed: ${errorMessage(e)}`);
    }
  }

  get anchors(): readonly Certificate[] {
    return this.options.anchors;
  }

  get crls(): readonly Crl[] | undefined {
    return this.#crls;
  }

  /**
   * Puts a new CRL list in force without a restart (milkywaysrvd reloads its CRL files when
   * they change, and on SIGHUP). Every list must be signed by an anchor (E_CRL_* otherwise, and
   * the old list stays). Connected peers and operators the new list revokes are cut off at
   * once; their next hello is refused with E_IDENTITY_REVOKED. Returns who was disconnected.
   */
  setCrls(crls: readonly Crl[]): string[] {
    checkCrls(crls, this.options.anchors);
    this.#crls = crls;
    const cut: string[] = [];
    for (const s of this.sessions) {
      if (s.cert === undefined) continue;
      try {
        verifyChain(this.#chainOf(s, s.cert), {
          anchors: this.options.anchors,
          roles: ['peer', 'operator'],
          at: this.now(),
          crls,
        });
      } catch (e) {
        cut.push(s.actor);
        this.log('warn', `broker: ${s.actor} disconnected: ${errorMessage(e)}`, {
          actor: s.actor,
          code: codeOf(e),
        });
        s.conn.close();
      }
    }
    return cut;
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  log(level: 'info' | 'warn' | 'error', msg: string, fields?: LogFields): void {
    this.options.log?.(level, msg, fields);
  }

  /**
   * What the health endpoint answers: `ok` only when the TLS listener listens, the database
   * answers a read, and (NATS mode) the cluster connection is up; `unavailable` with the
   * reason of each failed check otherwise, and from the moment the broker starts to stop.
   */
  health(): HealthReport {
    const checks: Record<string, string> = {};
    checks.broker = this.#closing ? 'stopping' : 'ok';
    checks.listener = this.#listening?.() === true ? 'ok' : 'not listening';
    try {
      this.db.db.prepare('PRAGMA user_version').get();
      checks.database = 'ok';
    } catch (e) {
      checks.database = `does not answer: ${errorMessage(e)}`;
    }
    if (this.options.nats !== undefined)
      checks.nats = this.nats?.problem() ?? (this.nats ? 'ok' : 'not connected');
    const ok = Object.values(checks).every((c) => c === 'ok');
    return { status: ok ? 'ok' : 'unavailable', checks, peers: this.peers.size };
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.jobs.flushResults();
    for (const s of this.sessions) s.conn.socket.destroy();
    this.#bridge?.stop();
    await this.nats?.close();
    await this.#close?.();
    this.db.close();
  }

  /** Sends through the outgoing hook (if any); a closed connection drops the message. */
  send(s: Session, m: Message): void {
    const hook = this.options.hooks?.outgoing;
    const write = (x: Message): void => {
      try {
        if (!s.conn.closed) s.conn.send(x);
      } catch (e) {
        this.log('warn', `broker: cannot send ${x.kind} to ${s.identity}: ${errorMessage(e)}`, {
          actor: s.identity,
          kind: x.kind,
        });
      }
    };
    if (hook === undefined) {
      write(m);
      return;
    }
    void Promise.resolve(hook({ to: s.role ?? 'anonymous', identity: s.identity, message: m }))
      .then((ms) => {
        for (const x of ms) write(x);
      })
      .catch((e: unknown) => this.log('error', `broker: outgoing hook failed: ${errorMessage(e)}`));
  }

  /**
   * Sends a message whose frame the caller already encoded (one command to a thousand peers
   * is serialised once). With an outgoing hook the message goes through `send` instead.
   */
  sendFrame(s: Session, m: Message, frame: Buffer): void {
    if (this.options.hooks?.outgoing !== undefined) {
      this.send(s, m);
      return;
    }
    try {
      if (!s.conn.closed) s.conn.sendFrame(frame);
    } catch (e) {
      this.log('warn', `broker: cannot send ${m.kind} to ${s.identity}: ${errorMessage(e)}`, {
        actor: s.identity,
        kind: m.kind,
      });
    }
  }

  /** Sends to a connected peer; false when it is offline. */
  sendToPeer(peerId: string, m: Message): boolean {
    const s = this.peers.get(peerId);
    if (s === undefined) return false;
    this.send(s, m);
    return true;
  }

  #accept(conn: Connection): void {
    const s: Session = { conn, role: undefined, identity: 'anonymous', actor: 'anonymous', cert: undefined };
    this.sessions.add(s);
    conn.onClose(() => {
      this.sessions.delete(s);
      if (s.role === 'peer' && this.peers.get(s.identity) === s) {
        this.peers.delete(s.identity);
        if (!this.#closing) this.db.touchPeer(s.identity, this.now().toISOString());
      }
      this.jobs.unwatchAll(s);
    });
    conn.onMessage((m) => {
      if (!this.#closing) this.#onMessage(s, m);
    });
    conn.onInvalid((m) => {
      if (m.id !== undefined) {
        this.send(s, message('error', { re: m.id, code: m.error.code, message: m.error.message }));
      } else {
        this.log('warn', `broker: invalid message from ${s.identity}: ${m.error.message}`, {
          actor: s.identity,
          code: m.error.code,
        });
      }
    });
  }

  #reply(s: Session, m: Message, fields: Record<string, unknown>): void {
    if (m.id !== undefined) this.send(s, message('reply', { ...fields, re: m.id }));
  }

  #error(s: Session, m: Message, e: unknown): void {
    const ours = isMilkyWayError(e);
    const fields = { actor: s.identity, kind: m.kind, code: codeOf(e) };
    if (!ours) this.log('error', `broker: ${m.kind} from ${s.identity} failed: ${errorMessage(e)}`, fields);
    if (m.id === undefined) {
      this.log('warn', `broker: ${m.kind} from ${s.identity} refused: ${errorMessage(e)}`, fields);
      return;
    }
    this.send(
      s,
      message('error', {
        re: m.id,
        code: ours ? e.code : 'E_BROKER_INTERNAL',
        message: ours ? e.message : `Broker failed on ${m.kind}`,
        ...(ours && e.details !== undefined ? { details: e.details } : {}),
      }),
    );
  }

  #onMessage(s: Session, m: Message): void {
    // Results wait for a group commit (BrokerJobs.onPeerResult); anything else is handled
    // against the database with every result received before it committed.
    if (m.kind !== 'result') this.jobs.flushResults();
    try {
      if (m.kind === 'hello') {
        if (s.role !== undefined)
          throw new ControlError('E_PROTOCOL', 'hello was already sent on this connection');
        this.#reply(s, m, this.#hello(s, m));
        if (s.role === 'peer') this.jobs.onPeerOnline(s.identity);
        return;
      }
      if (s.role === undefined && m.kind !== 'ping') {
        throw new ControlError('E_PROTOCOL', `${m.kind} before hello`);
      }
      const allowed: readonly string[] =
        s.role === 'peer' ? PEER_KINDS : s.role === 'operator' ? OPERATOR_KINDS : [];
      if (
        !(ANY_KINDS as readonly string[]).includes(m.kind) &&
        !(ANONYMOUS_KINDS as readonly string[]).includes(m.kind) &&
        !allowed.includes(m.kind)
      ) {
        throw new ControlError('E_FORBIDDEN', `A ${s.role ?? 'new'} connection may not send ${m.kind}`);
      }
      const r = handleRequest(this, s, m);
      if (r !== undefined) this.#reply(s, m, r);
      else if (m.id !== undefined) this.#reply(s, m, {});
    } catch (e) {
      this.#error(s, m, e);
    }
  }

  /** Authenticates the connection by its client certificate (or marks it anonymous). */
  #hello(s: Session, m: Message): Record<string, unknown> {
    const leaf = s.conn.socket.authorized ? s.conn.peerCertificate() : undefined;
    if (leaf === undefined) {
      s.role = 'anonymous';
      return { role: 'anonymous', identity: 'anonymous', anonymous: true, broker: this.fingerprint };
    }
    let cert: Certificate;
    try {
      // What the client says is above its TLS certificate (a peer issuer): untrusted input,
      // placed after the leaf OpenSSL authenticated and verified from there like any chain.
      s.above = (Array.isArray(m.chain) ? (m.chain as string[]) : []).flatMap((b64) =>
        parseCertificates(new Uint8Array(Buffer.from(b64, 'base64')), 'hello chain'),
      );
      cert = verifyChain(this.#chainOf(s, leaf), {
        anchors: this.options.anchors,
        roles: ['peer', 'operator'],
        at: this.now(),
        ...(this.#crls === undefined ? {} : { crls: this.#crls }),
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      setTimeout(() => s.conn.close(), 50).unref();
      throw new ControlError(
        code === 'E_CERT_REVOKED' ? 'E_IDENTITY_REVOKED' : 'E_FORBIDDEN',
        `Broker refuses ${leaf.subject}: ${errorMessage(e)}`,
        { cause: e },
      );
    }
    if (m.role !== cert.role) {
      throw new ControlError(
        'E_FORBIDDEN',
        `hello says role ${String(m.role)} but the certificate is a ${cert.role}`,
      );
    }
    s.cert = cert;
    if (cert.role === 'peer') {
      const peerId = cert.peerId;
      if (peerId === undefined)
        throw new ControlError('E_FORBIDDEN', `Peer certificate ${cert.subject} has no peer id`);
      s.role = 'peer';
      s.identity = peerId;
      s.actor = `peer:${peerId}`;
      const old = this.peers.get(peerId);
      this.peers.set(peerId, s);
      // The newest connection wins: the agent reconnected and the old socket is stale.
      if (old !== undefined && old !== s) old.conn.close();
      this.db.upsertPeer({
        peerId,
        name: cert.subject,
        fingerprint: cert.fingerprint,
        // With the chain above it, so an operator can verify the peer from the root it holds.
        certificate: this.#chainOf(s, cert)
          .map((c) => c.pem)
          .join(''),
        now: this.now().toISOString(),
      });
    } else {
      s.role = 'operator';
      s.identity = cert.fingerprint;
      s.actor = `operator:${cert.subject}:${cert.fingerprint.slice(0, 16)}`;
    }
    return { role: s.role, identity: s.identity, anonymous: false, broker: this.fingerprint };
  }

  /** Leaf plus the intermediates the client sent (the anchors supply the root). */
  #chainOf(s: Session, leaf: Certificate): Certificate[] {
    if (s.above !== undefined && s.above.length > 0) return [leaf, ...s.above];
    const out = [leaf];
    let c = s.conn.socket.getPeerCertificate(true);
    for (let i = 0; i < 4 && c.issuerCertificate !== undefined && c.issuerCertificate !== c; i++) {
      c = c.issuerCertificate;
      const parsed = parseCertificates(new Uint8Array(c.raw))[0];
      if (parsed === undefined || parsed.fingerprint === out[out.length - 1]?.fingerprint) break;
      out.push(parsed);
    }
    return out;
  }
}

/** The stable code of an error of ours, for a log line's `code` field. */
function codeOf(e: unknown): string | undefined {
  return isMilkyWayError(e) ? e.code : undefined;
}
