// The broker's append-only audit log, kept in its database: every command and result
// envelope, enrollment decision, group and membership change as one entry of the hash chain
// defined in control/wire/audit-chain.ts (which operators verify offline).
import { canonicalText } from '../../keys/index.ts';
import { type AuditEntry, entryHashOf, GENESIS } from '../wire/index.ts';
import type { BrokerDb } from './broker-db.ts';

/** Appends to the chain kept in the broker database (inside the caller's transaction if any). */
export class AuditLog {
  readonly #db: BrokerDb;

  constructor(db: BrokerDb) {
    this.#db = db;
  }

  /** `dataText`, when the caller has it: `data`'s canonical text (keys/ canonicalText). */
  append(kind: string, actor: string, data: unknown, now: Date = new Date(), dataText?: string): AuditEntry {
    return this.#db.tx(() => {
      const head = this.#db.auditTip();
      const e = {
        seq: (head?.seq ?? 0) + 1,
        time: now.toISOString(),
        kind,
        actor,
        data,
        prev: head?.hash ?? GENESIS,
      };
      // `data` (a result's whole signed envelope, ~14 KB) is written out once: its canonical
      // text is both what the hash covers and what the row stores (JSON that reads back as
      // the same value).
      const text = dataText ?? canonicalText(data);
      const entry = { ...e, hash: entryHashOf(e, text) };
      this.#db.appendAudit(entry, text);
      return entry;
    });
  }

  head(): AuditEntry | undefined {
    return this.#db.auditHead();
  }

  read(from = 1, limit = 1000): AuditEntry[] {
    return this.#db.audit(from, limit);
  }
}
