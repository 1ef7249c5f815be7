// What the job bookkeeping (broker-jobs.ts) and the request handlers (broker-requests.ts)
// may use of the running broker: its database and audit log, the connected peers, the trust
// anchors, the clock, the log and the way out to a session. broker.ts implements it and hands
// itself over, so neither module imports the broker that calls it.
import type { LogFields } from '../../common/index.ts';
import type { Certificate, Crl } from '../../keys/index.ts';
import type { Connection, Message } from '../wire/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { BrokerDb } from './broker-db.ts';
import type { NatsRelay } from './nats-relay.ts';

export type SessionRole = 'peer' | 'operator' | 'anonymous';

export interface Session {
  conn: Connection;
  /** Unset until hello. */
  role: SessionRole | undefined;
  /** Peer id, operator certificate fingerprint, or `anonymous`. */
  identity: string;
  /** Human-readable actor name for the audit log. */
  actor: string;
  cert: Certificate | undefined;
  /** The certificates the client sent in hello above its TLS certificate (a peer issuer). */
  above?: Certificate[];
}

export interface BrokerContext {
  readonly db: BrokerDb;
  readonly audit: AuditLog;
  /** Connected peers by peer id (one session each). */
  readonly peers: ReadonlyMap<string, Session>;
  /** User roots whose peers and operators may connect, and their revocation lists. */
  readonly anchors: readonly Certificate[];
  readonly crls: readonly Crl[] | undefined;
  /** NATS mode (doc/nats.md): deliveries go to the peers' mailboxes through this relay. */
  readonly nats: NatsRelay | undefined;
  now(): Date;
  /** One log line; `fields` (actor, peer, job, group, code) become key=value or JSON fields (common/log-line.ts). */
  log(level: 'info' | 'warn' | 'error', message: string, fields?: LogFields): void;
  /** Sends through the outgoing hook (if any); a closed connection drops the message. */
  send(s: Session, m: Message): void;
  /** Sends a message whose frame the caller already encoded. */
  sendFrame(s: Session, m: Message, frame: Buffer): void;
}
