// The count of AVC denials since boot (doc/selinux.md, "Status"), from the kernel's own log.
// Without auditd the kernel prints each audit record, `avc:  denied` lines among them, with
// printk (kernel/audit.c kauditd_printk_skb), so /dev/kmsg holds them as kernel records
// (facility 0). selinuxfs offers no such count: /sys/fs/selinux/avc/cache_stats has only the
// AVC cache's lookups, hits, misses, allocations, reclaims and frees. The kernel prints audit
// records through printk_ratelimit() (10 in 5 s, then a "kauditd_printk_skb: N callbacks
// suppressed" line), so a burst of denials is counted as what was printed, and what was not
// printed is counted apart (`unseen`).
import { closeSync, constants, openSync, readSync } from 'node:fs';

/** Is this /dev/kmsg record (`PRI,SEQ,TIME,FLAGS;TEXT`) one the kernel itself printed? */
function isKernelRecord(record: string): boolean {
  if (record.indexOf(';') < 0) return false;
  const pri = Number(record.slice(0, record.indexOf(',')));
  // Facility 0 is the kernel's; the kernel makes every userspace write to /dev/kmsg LOG_USER
  // (1) or above (printk/printk.c devkmsg_write), so a service cannot print a fake denial
  // into the count.
  return Number.isInteger(pri) && pri >> 3 === 0;
}

// A USER_AVC record (type 1107) is an object manager's in userspace: the agent's for its
// local API and dbus-daemon's for the bus, both milkyway_agent_t. Any process with
// CAP_AUDIT_WRITE may send one (a layer's root service may hold it), so only those whose
// sender the kernel names as the agent count: the kernel writes `subj=` from the sender's
// credentials before the `msg='…'` the sender wrote (kernel/audit.c audit_log_user_recv_msg).
const USER_AVC = /^audit: type=1107 /;
const AGENT_SUBJECT = /\ssubj=system_u:system_r:milkyway_agent_t:/;

/** Is this /dev/kmsg record (`PRI,SEQ,TIME,FLAGS;TEXT`) an AVC denial the kernel printed? */
export function isKernelDenial(record: string): boolean {
  if (!isKernelRecord(record)) return false;
  const text = record.slice(record.indexOf(';') + 1);
  if (!/\bavc: +denied\b/.test(text)) return false;
  if (!USER_AVC.test(text)) return true;
  const msg = text.indexOf(" msg='");
  return msg > 0 && AGENT_SUBJECT.test(text.slice(0, msg));
}

/** The N of a kernel record `kauditd_printk_skb: N callbacks suppressed` (audit records not printed). */
export function suppressedAuditRecords(record: string): number {
  if (!isKernelRecord(record)) return 0;
  const m = /\bkauditd_printk_skb: (\d+) callbacks suppressed\b/.exec(record.slice(record.indexOf(';') + 1));
  return m === null ? 0 : Number(m[1]);
}

/**
 * Counts the AVC denials the kernel logs: reads /dev/kmsg without blocking (from the start of
 * its buffer, so the boot's denials count) whenever asked and every few seconds, so the ring
 * rarely wraps unseen. /dev/kmsg hands out one record per read(). Records the ring lost before
 * a read (`lost`) and audit records the kernel's rate limit kept from the log (`suppressed`)
 * may have been denials: `unseen` is their sum.
 */
export class DenialCounter {
  #fd: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The sequence number the next record should have (the kernel's first is 0). */
  #nextSeq = 0;
  denials = 0;
  /** Records the kernel overwrote before they were read: the gaps in their sequence numbers. */
  lost = 0;
  /** Audit records the kernel's printk rate limit kept from its log. */
  suppressed = 0;
  /** Records read. */
  records = 0;
  last: string | undefined;

  /** Records that may have been denials but never reached the count. */
  get unseen(): number {
    return this.lost + this.suppressed;
  }

  start(kmsg = '/dev/kmsg', everyMs = 2000): void {
    if (this.#fd !== undefined) return;
    try {
      this.#fd = openSync(kmsg, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return;
    }
    this.#timer = setInterval(() => this.drain(), everyMs);
    this.#timer.unref();
  }

  /** Counts a denial the agent itself made (its D-Bus access check). */
  add(text: string): void {
    this.denials++;
    this.last = text;
  }

  drain(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    const buf = Buffer.alloc(8192);
    for (let i = 0; i < 100_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        // EPIPE: the ring overwrote the next record; the following read resumes at the
        // oldest one left, and its sequence number says how many were lost.
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        return; // EAGAIN: nothing more now
      }
      if (n <= 0) return;
      const record = buf.toString('utf8', 0, n);
      this.records++;
      const seq = Number(record.split(',', 2)[1]);
      if (Number.isSafeInteger(seq) && seq >= this.#nextSeq) {
        this.lost += seq - this.#nextSeq;
        this.#nextSeq = seq + 1;
      }
      this.suppressed += suppressedAuditRecords(record);
      if (isKernelDenial(record)) {
        this.denials++;
        // The message, without the record's ` KEY=VALUE` continuation lines.
        this.last = (record.slice(record.indexOf(';') + 1).split('\n', 1)[0] ?? '').trim().slice(0, 1000);
      }
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#timer = undefined;
  }
}
