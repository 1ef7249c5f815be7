// What each NATS user may publish and subscribe to in NATS mode (doc/nats.md), derived from the
// subject names in nats-subjects.ts so the two never drift. nats-server enforces these per
// connection (its `authorization.users[].permissions`); they narrow what a stolen or hostile
// peer credential can do on the servers, not what it can make a peer accept — that stays in the
// signatures. Every request's reply comes back on the user's own inbox prefix, so no user needs
// `_INBOX.>`, which would let it read every other client's replies.
import {
  ALL_ENROLL,
  ALL_GROUP_WAKES,
  AUDIT_STREAM,
  CMD_STREAM,
  mailboxSubject,
  statusSubject,
  subjectToken,
  wakeSubject,
} from './nats-subjects.ts';

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

export type NatsRole =
  | { role: 'peer'; peerId: string }
  | { role: 'broker' }
  | { role: 'auditor'; name: string }
  /** A machine that has no certificate yet (one shared nkey for all of them, doc/nats.md). */
  | { role: 'enroll' };

/** Where the broker answers enrolling machines (it may publish there, they may read it). */
const ENROLL_INBOX = '_INBOX.enroll';

/** The inbox prefix a user's client must use (`inboxPrefix` of the NATS client): its replies arrive under it. */
export function inboxPrefix(who: NatsRole): string {
  if (who.role === 'peer') return `_INBOX.peer.${subjectToken(who.peerId)}`;
  if (who.role === 'auditor') return `_INBOX.auditor.${subjectToken(who.name)}`;
  if (who.role === 'enroll') return ENROLL_INBOX;
  return '_INBOX.broker';
}

/**
 * A peer publishes only its own results and status and reads the commands stream one message
 * at a time (STREAM.MSG.GET); it subscribes only to its own mailbox's wake-ups and the groups'
 * (payload-free, nats-subjects.ts wakeSubject; the data is read from the stream), never to the
 * stream subjects themselves. On 2.9 MSG.GET cannot be narrowed to a subject, so a peer can read
 * other mailboxes through it: commands are not confidential (secrets in them are sealed to each
 * peer's ML-KEM key), and for the same reason the group wake-ups are open to every peer.
 */
function peer(peerId: string): NatsPermissions {
  const t = subjectToken(peerId);
  return {
    publish: { allow: [`mway.res.${t}.>`, statusSubject(peerId), `$JS.API.STREAM.MSG.GET.${CMD_STREAM}`] },
    subscribe: {
      allow: [
        wakeSubject(mailboxSubject(peerId)),
        ALL_GROUP_WAKES,
        `${inboxPrefix({ role: 'peer', peerId })}.>`,
      ],
    },
  };
}

/**
 * The broker stores commands and memberships, administers the streams, reads answers and
 * statuses, and answers enrollment requests (on the enrolling machines' inbox).
 */
function broker(): NatsPermissions {
  return {
    publish: { allow: ['mway.cmd.>', 'mway.wake.>', '$JS.API.>', `${ENROLL_INBOX}.>`] },
    subscribe: {
      allow: ['mway.res.>', 'mway.status.*', ALL_ENROLL, `${inboxPrefix({ role: 'broker' })}.>`],
    },
  };
}

/**
 * A machine without a certificate may only ask the broker for one and read the answers. The
 * credential is shared by every enrolling machine (it is in the image), so what it allows is
 * what the TLS broker's anonymous port allows anyone who reaches it: sending signed requests
 * (each only under its own key's subject, which the broker checks) and reading answers, which
 * hold certificates (public) and request states. It cannot publish an answer, read a request,
 * or touch a stream.
 */
function enroll(): NatsPermissions {
  return { publish: { allow: [ALL_ENROLL] }, subscribe: { allow: [`${ENROLL_INBOX}.>`] } };
}

/** An auditor (`mway audit --nats`) reads the audit stream and nothing else. */
function auditor(name: string): NatsPermissions {
  return {
    publish: {
      allow: [`$JS.API.STREAM.MSG.GET.${AUDIT_STREAM}`, `$JS.API.STREAM.INFO.${AUDIT_STREAM}`],
    },
    subscribe: { allow: [`${inboxPrefix({ role: 'auditor', name })}.>`] },
  };
}

export function natsPermissions(who: NatsRole): NatsPermissions {
  if (who.role === 'peer') return peer(who.peerId);
  if (who.role === 'auditor') return auditor(who.name);
  if (who.role === 'enroll') return enroll();
  return broker();
}
