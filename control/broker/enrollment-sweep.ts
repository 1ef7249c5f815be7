// Pending enrollment requests that can no longer be accepted: `mway peers accept` checks a
// request's signed `created` against the current time (control/wire/enrollment.ts), so one
// older than ENROLL_MAX_AGE_MS would only be listed to fail. Dropping it also lets the
// machine's next request (same key, so the same request id, freshly signed) take its place.
import { enrollmentStale } from '../wire/index.ts';
import type { BrokerContext } from './broker-context.ts';

/** Drops every stale pending request; returns how many went. */
export function sweepEnrollments(b: BrokerContext): number {
  const now = b.now();
  let dropped = 0;
  for (const e of b.db.pendingEnrollments()) {
    if (!enrollmentStale(e.request, now)) continue;
    if (b.db.dropPendingEnrollment(e.requestId)) {
      dropped++;
      b.log('info', `broker: dropped enrollment request ${e.requestId} of ${e.peerId}: older than a day`, {
        peer: e.peerId,
      });
    }
  }
  return dropped;
}
