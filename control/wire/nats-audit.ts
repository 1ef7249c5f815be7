// NATS mode's audit (doc/nats.md, "The audit stream"): the servers copy every message of the
// commands and results streams into MWAY_AUDIT (JetStream sources), which nobody can publish to,
// delete from or purge. Its hash chain is not stored anywhere: it is a fold over the stream in
// sequence order, entry n = audit-chain.ts's entry with seq n, the server's timestamp, a kind
// and data read from the wire message, and prev = entry n−1's hash. Anyone allowed to read the
// stream recomputes it and checks it exactly as `mway audit --verify` checks the broker's
// chain (verifyAuditChain); an operator's recorded head catches a rewritten stream, and the
// signed envelopes inside stay unforgeable whatever the servers do.
import type { JetStreamManager } from '@nats-io/jetstream';
import { type AuditEntry, entryHash, GENESIS } from './audit-chain.ts';
import { ControlError } from './control-error.ts';
import { connectNats } from './nats-connect.ts';
import { AUDIT_STREAM } from './nats-subjects.ts';
import { decodeBody } from './protocol.ts';

export interface StoredAuditMessage {
  seq: number;
  /** The server's timestamp (RFC 3339, nanoseconds), as the stream stores it. */
  timestamp: string;
  subject: string;
  data: Uint8Array;
}

/**
 * What one stored message says in the chain. A message that is not a wire message (junk some
 * client stored on a stream subject) is still an entry — the chain covers everything the
 * servers hold — with its bytes' length and no envelope.
 */
export function auditRecord(subject: string, data: Uint8Array): { kind: string; data: unknown } {
  let m: ReturnType<typeof decodeBody>;
  try {
    m = decodeBody(data);
  } catch {
    return { kind: 'nats-junk', data: { subject, bytes: data.length } };
  }
  if (m.kind === 'command-deliver')
    return {
      kind: 'command',
      data: { subject, jobId: m.jobId, expiresAt: m.expiresAt, envelope: m.command },
    };
  if (m.kind === 'result')
    return { kind: 'result', data: { subject, jobId: m.jobId, outcome: m.outcome, envelope: m.result } };
  if (m.kind === 'membership-deliver')
    return {
      kind: m.op === 'delete' ? 'membership-delete' : 'membership-put',
      data: { subject, group: m.group, peer: m.peerId, envelope: m.membership ?? null },
    };
  if (m.kind === 'membership-ack')
    return { kind: 'membership-ack', data: { subject, group: m.group, op: m.op, envelope: m.ack ?? null } };
  return { kind: 'nats-junk', data: { subject, bytes: data.length, wireKind: m.kind } };
}

/** The chain over stored messages in stream order, from `prev` (the genesis for sequence 1). */
export function foldNatsAudit(messages: readonly StoredAuditMessage[], prev = GENESIS): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const s of messages) {
    const { kind, data } = auditRecord(s.subject, s.data);
    const e = { seq: s.seq, time: s.timestamp, kind, actor: `nats:${s.subject}`, data, prev };
    const entry = { ...e, hash: entryHash(e) };
    out.push(entry);
    prev = entry.hash;
  }
  return out;
}

/** Reads MWAY_AUDIT from its first to its last sequence (STREAM.INFO, then STREAM.MSG.GET each). */
export async function readAuditStream(jsm: JetStreamManager): Promise<StoredAuditMessage[]> {
  const info = await jsm.streams.info(AUDIT_STREAM);
  const out: StoredAuditMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq });
    if (m === null)
      // Nothing is deleted from this stream (deny_delete): a gap is a server that lost or hid it.
      throw new ControlError('E_AUDIT_BROKEN', `NATS audit stream ${AUDIT_STREAM} has no message ${seq}`, {
        details: { seq },
      });
    out.push({ seq: m.seq, timestamp: m.timestamp, subject: m.subject, data: m.data });
  }
  return out;
}

/** `mway audit --nats`: the audit chain folded from the stream, read as the auditor `name`. */
export async function natsAuditEntries(o: {
  servers: string[];
  name: string;
  nkey?: string | undefined;
  ca?: string | undefined;
}): Promise<AuditEntry[]> {
  const nc = await connectNats({
    servers: o.servers,
    who: { role: 'auditor', name: o.name },
    nkey: o.nkey,
    ca: o.ca,
    name: `mway-audit-${o.name}`,
  });
  try {
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    return foldNatsAudit(await readAuditStream(jsm));
  } finally {
    await nc.close();
  }
}
