// NATS mode's names, defined once (doc/nats.md): the subjects a peer's mailbox, its results and
// its status travel on, and the two JetStream streams the broker side sets up. NATS is as
// untrusted as the broker: these are routing only, every message on them is a signed envelope
// (or a protocol message carrying one) that its reader checks as it would over TLS.

/** Commands and memberships (the wire's `command-deliver` / `membership-deliver` messages). */
export const CMD_STREAM = 'MWAY_CMD';
/** Signed results (the wire's `result` / `membership-ack` messages). */
export const RES_STREAM = 'MWAY_RES';
/** Every command and answer, copied from the two streams above (JetStream sources): the audit fold. */
export const AUDIT_STREAM = 'MWAY_AUDIT';

/**
 * A peer or job id as one subject token. Ids may hold `.`, `:` and `@` (protocol.ts ID_RE),
 * which NATS would split or reject; those are hex-encoded behind a `_`, which no id starts
 * with, so two ids never share a token.
 */
export function subjectToken(id: string): string {
  return /^[A-Za-z0-9_-]+$/.test(id) ? id : `_${Buffer.from(id, 'utf8').toString('hex')}`;
}

/** Where the broker side publishes a peer's commands and memberships. */
export function mailboxSubject(peerId: string): string {
  return `mway.cmd.peer.${subjectToken(peerId)}`;
}

/** Where the broker side publishes a command once for every member of `group`. */
export function groupSubject(group: string): string {
  return `mway.cmd.group.${subjectToken(group)}`;
}

/** Every group's subject (a subscription's wildcard). */
export const ALL_GROUPS = 'mway.cmd.group.*';

/**
 * The payload-free wake-up (core NATS) the broker side sends after the servers stored a message
 * on `streamSubject` (a mailbox or a group subject): `mway.cmd.…` becomes `mway.wake.…`. Peers
 * subscribe to these, not to the stream subjects, so a stored command reaches a peer once (its
 * stream read), not a second time as a core copy, and the wake-up follows the store's ack.
 */
export function wakeSubject(streamSubject: string): string {
  return streamSubject.replace(/^mway\.cmd\./, 'mway.wake.');
}

/** The stream subject a wake-up is for (the inverse of wakeSubject). */
export function wokenSubject(wake: string): string {
  return wake.replace(/^mway\.wake\./, 'mway.cmd.');
}

/** Every group's wake-up subject (a subscription's wildcard). */
export const ALL_GROUP_WAKES = 'mway.wake.group.*';

/** Where a peer publishes what it answers to job `jobId` (a result or a membership ack). */
export function resultSubject(peerId: string, jobId: string): string {
  return `mway.res.${subjectToken(peerId)}.${subjectToken(jobId)}`;
}

/** A peer's signed status (core NATS, not stored: the next one replaces it). */
export function statusSubject(peerId: string): string {
  return `mway.status.${subjectToken(peerId)}`;
}

/**
 * Where a machine without a certificate asks for one (core NATS request/reply, not stored):
 * `requestId` is its key's (enrollment.ts), so the broker checks the request it carries is
 * signed by the key the subject names.
 */
export function enrollSubject(requestId: string): string {
  return `mway.enroll.${subjectToken(requestId)}`;
}

/** Every enrollment subject (the broker's subscription). */
export const ALL_ENROLL = 'mway.enroll.*';

/** The de-duplication id of a delivery: one per job and peer, so a retried publish is stored once. */
export function deliveryMsgId(jobId: string, peerId: string): string {
  return `d.${subjectToken(jobId)}.${subjectToken(peerId)}`;
}

/** The de-duplication id of a job's one delivery to a group subject. */
export function groupMsgId(jobId: string, group: string): string {
  return `g.${subjectToken(jobId)}.${subjectToken(group)}`;
}

export function answerMsgId(peerId: string, jobId: string): string {
  return `a.${subjectToken(peerId)}.${subjectToken(jobId)}`;
}

/** How long the servers keep a command: the longest lifetime a command may have, plus a margin. */
export const CMD_MAX_AGE_MS = 8 * 24 * 3600 * 1000;
/** Re-sent message ids are refused for this long (JetStream's `duplicate_window`). */
export const DEDUP_WINDOW_MS = 10 * 60 * 1000;

/** The streams' configuration (JetStream's field names); `replicas` 3 on a 3-node cluster. */
export function streamConfigs(replicas: number): Array<Record<string, unknown>> {
  const ns = (ms: number) => ms * 1_000_000;
  const common = {
    retention: 'limits',
    storage: 'file',
    discard: 'old',
    num_replicas: replicas,
    duplicate_window: ns(DEDUP_WINDOW_MS),
    // Nothing is deleted by a client: the servers age messages out, nothing else.
    deny_delete: true,
    deny_purge: true,
  };
  return [
    { ...common, name: CMD_STREAM, subjects: ['mway.cmd.>'], max_age: ns(CMD_MAX_AGE_MS) },
    { ...common, name: RES_STREAM, subjects: ['mway.res.>'], max_age: ns(CMD_MAX_AGE_MS) },
    // The servers copy both streams here, in the order they receive them; nothing publishes
    // into it and nothing ages out, so the chain folded over it starts at 1 and has no gaps.
    {
      ...common,
      name: AUDIT_STREAM,
      subjects: [],
      sources: [{ name: CMD_STREAM }, { name: RES_STREAM }],
      max_age: 0,
    },
  ];
}
