// The audit log's hash chain, appended by the broker (control/broker/audit-log.ts) and
// verified by operators: every command and result envelope, enrollment decision, group and
// membership change. Entry n's hash is
// sha256(canonicalJson({seq, time, kind, actor, data, prev})) with prev = entry n−1's hash
// (64 zeros for the first), so removing, reordering or editing any entry breaks every
// hash after it. `verifyAuditChain` needs nothing but the entries (offline); with anchors
// it also verifies the signed envelopes inside them. A broker that rewrites its whole
// chain is caught by comparing the head hash with one an operator recorded earlier
// (`mway audit --verify --head H`), and the envelopes inside stay unforgeable regardless.
import { createHash } from 'node:crypto';
import {
  type Certificate,
  canonicalText,
  type Crl,
  type EnvelopeType,
  verifyEnvelope,
} from '../../keys/index.ts';
import { ControlError } from './control-error.ts';

export const GENESIS = '0'.repeat(64);

/** One entry of the chain, as the broker stores it and `audit-get` returns it. */
export interface AuditEntry {
  seq: number;
  time: string;
  kind: string;
  actor: string;
  data: unknown;
  prev: string;
  hash: string;
}

/** Kinds of audit entries whose `data.envelope` is a signed envelope, and its type. */
const ENVELOPE_KINDS: Record<string, EnvelopeType> = {
  command: 'command',
  result: 'result',
  'membership-put': 'membership',
  'membership-delete': 'membership',
  // NATS mode's audit stream (nats-audit.ts): a peer's signed answer to a membership.
  'membership-ack': 'result',
};

export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return entryHashOf(e, canonicalText(e.data));
}

/**
 * entryHash with `data`'s canonical text given (the broker computes it once and stores that text
 * as the row's data). The body is the canonical form of the whole entry: its members in code-unit
 * order (actor, data, kind, prev, seq, time), `data` spliced in as the text it canonicalizes to.
 */
export function entryHashOf(e: Omit<AuditEntry, 'hash' | 'data'>, dataText: string): string {
  const actor = canonicalText({ actor: e.actor });
  const rest = canonicalText({ kind: e.kind, prev: e.prev, seq: e.seq, time: e.time });
  const body = `${actor.slice(0, -1)},"data":${dataText},${rest.slice(1)}`;
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

export interface AuditVerifyOptions {
  /** Also verify every embedded envelope against these anchors. */
  anchors?: readonly Certificate[];
  crls?: readonly Crl[];
  /** The hash the chain must end with (recorded earlier by an operator). */
  head?: string;
  /** Hash of the entry before the first one given (when verifying a suffix). */
  prev?: string;
}

export interface AuditVerifyReport {
  entries: number;
  head: string;
  envelopesVerified: number;
}

/**
 * Verifies a chain of entries: contiguous sequence numbers, each prev = the previous hash,
 * each hash recomputed. Throws E_AUDIT_BROKEN naming the first bad entry.
 */
export function verifyAuditChain(
  entries: readonly AuditEntry[],
  o: AuditVerifyOptions = {},
): AuditVerifyReport {
  let prev = o.prev ?? GENESIS;
  let expectSeq = entries[0]?.seq ?? 1;
  if (o.prev === undefined && entries.length > 0 && expectSeq !== 1) {
    throw new ControlError('E_AUDIT_BROKEN', `Audit chain starts at entry ${expectSeq}, not 1`, {
      details: { seq: expectSeq },
    });
  }
  let envelopesVerified = 0;
  for (const e of entries) {
    const where = { details: { seq: e.seq } };
    if (e.seq !== expectSeq) {
      throw new ControlError(
        'E_AUDIT_BROKEN',
        `Audit entry ${e.seq} follows ${expectSeq - 1}: entries missing`,
        where,
      );
    }
    if (e.prev !== prev) {
      throw new ControlError(
        'E_AUDIT_BROKEN',
        `Audit entry ${e.seq} does not link to entry ${e.seq - 1}`,
        where,
      );
    }
    const h = entryHash(e);
    if (h !== e.hash) {
      throw new ControlError(
        'E_AUDIT_BROKEN',
        `Audit entry ${e.seq} was modified: hash is ${h}, recorded ${e.hash}`,
        where,
      );
    }
    const type = ENVELOPE_KINDS[e.kind];
    const env = (e.data as { envelope?: unknown } | null)?.envelope;
    if (o.anchors !== undefined && type !== undefined && env !== undefined && env !== null) {
      try {
        // Check the signature at the time it was made: old entries stay valid after expiry.
        const created = (env as { signatures?: Array<{ created?: string }> }).signatures?.[0]?.created;
        verifyEnvelope(env as never, {
          type,
          anchors: o.anchors,
          ...(o.crls === undefined ? {} : { crls: o.crls }),
          ...(created === undefined ? {} : { at: new Date(created) }),
        });
        envelopesVerified++;
      } catch (err) {
        throw new ControlError(
          'E_AUDIT_ENVELOPE',
          `Audit entry ${e.seq} (${e.kind}) holds an envelope that does not verify: ${(err as Error).message}`,
          { ...where, cause: err },
        );
      }
    }
    prev = e.hash;
    expectSeq++;
  }
  if (o.head !== undefined && o.head !== prev) {
    throw new ControlError('E_AUDIT_BROKEN', `Audit chain ends with ${prev}, expected head ${o.head}`);
  }
  return { entries: entries.length, head: prev, envelopesVerified };
}
