// A peer's session over NATS JetStream (doc/nats.md), the second implementation of the peer
// side of the transport boundary (PeerSession; the first is connectBroker's TLS client). The
// peer reads its mailbox subject from the commands stream one message at a time, from the
// stream sequence it persisted after its last answer (beside the replay cache): no consumer,
// durable or ephemeral, is kept on the servers per peer, and an offline peer catches up on
// reconnect. Messages are the wire's own (`command-deliver`, `membership-deliver`), checked by
// the protocol schema here and by the peer executor after; NATS is untrusted like the broker.
import { readFile } from 'node:fs/promises';
// The NATS client is loaded only when NATS mode is used (an agent or broker without it never loads it).
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { errorMessage, writeJsonAtomic } from '../../common/index.ts';
import { ControlError } from './control-error.ts';
import { type BacklogItem, handOutOrder } from './nats-backlog.ts';
import { connectNats } from './nats-connect.ts';
import {
  ALL_GROUP_WAKES,
  answerMsgId,
  CMD_STREAM,
  groupSubject,
  mailboxSubject,
  RES_STREAM,
  resultSubject,
  statusSubject,
  wakeSubject,
  wokenSubject,
} from './nats-subjects.ts';
import { decodeBody, HEADER_SIZE, type Message, message, encodeFrame } from './protocol.ts';

/** What a peer link needs of its connection, whichever transport carries it. */
export interface PeerSession {
  send(kind: Message['kind'], fields?: Record<string, unknown>): void;
  close(): void;
  /** Resolves when the session ends (the reason, if any). */
  closed: Promise<Error | undefined>;
}

export interface NatsPeerOptions {
  /** `nats://host:port` URLs of (some of) the cluster's servers. */
  servers: string[];
  /** The peer's NATS nkey seed file; without it the peer connects as the servers' anonymous user. */
  nkey?: string;
  /** PEM file of the CA of the servers' TLS certificates (nats-connect.ts). */
  ca?: string;
  /**
   * The cluster's JetStream domain: a peer connected to a site's leaf node (no JetStream of its
   * own) reaches the cluster's streams as $JS.<domain>.API (doc/nats.md, "A leaf node for a site").
   */
  domain?: string;
  peerId: string;
  /** The mailbox cursor file (`<stateDir>/control/nats-cursor.json`). */
  cursorFile: string;
  onMessage(m: Message): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** The groups whose subjects this peer reads too (the ones it holds signed memberships of, now). */
  groups?: () => readonly string[];
  /** Reads the mailbox at least this often, besides the wake-up on each new message. */
  pollMs?: number;
}

/** The protocol body of `m` (the frame without its length header). */
export function messageBody(m: Message): Uint8Array {
  return encodeFrame(m).subarray(HEADER_SIZE);
}

async function readCursor(file: string): Promise<number> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const v = JSON.parse(raw) as { v?: unknown; stream?: unknown; seq?: unknown };
  if (v.v !== 1 || v.stream !== CMD_STREAM || !Number.isSafeInteger(v.seq) || (v.seq as number) < 0)
    throw new ControlError('E_PROTOCOL', `${file} is not a NATS mailbox cursor (v 1, stream ${CMD_STREAM})`);
  return v.seq as number;
}

/**
 * How far a peer reads its backlog ahead of what it hands to the link: a cancellation stored
 * within this window behind its command is applied before the command (nats-backlog.ts).
 */
const READ_AHEAD = 64;
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

/** How long a cancellation moved ahead waits for the link's answers (a run that threw gives none). */
const SETTLE_MS = 30_000;

/** How long a peer keeps reading after a wake-up that found nothing yet. */
const WAKE_GRACE_MS = 300;

/** How long reading the mailbox may fail without a verdict before the peer says so. */
const READ_WARN_MS = 10_000;

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isNotFound(e: unknown): boolean {
  // JetStream's "no message found" (API error 10037) for a next_by_subj past the end.
  const err = e as { code?: unknown; message?: unknown; apiError?: () => { err_code?: number } };
  const api = typeof err.apiError === 'function' ? err.apiError() : undefined;
  return api?.err_code === 10037 || /no message found/i.test(String(err.message));
}

/** Whether a delivered command's (unverified) audience names `peerId`: only picks what to skip. */
function namesPeer(m: Message, peerId: string): boolean {
  const peers = (m.command as { payload?: { audience?: { peers?: unknown } } } | undefined)?.payload?.audience
    ?.peers;
  return Array.isArray(peers) && peers.includes(peerId);
}

function isPermissionDenied(e: unknown): boolean {
  return /permissions violation/i.test(String((e as { message?: unknown }).message));
}

/** Connects and starts reading the mailbox; the caller's `onMessage` sees what it would over TLS. */
export async function connectNatsPeer(o: NatsPeerOptions): Promise<PeerSession> {
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  const nc: NatsConnection = await connectNats({
    servers: o.servers,
    who: { role: 'peer', peerId: o.peerId },
    nkey: o.nkey,
    ca: o.ca,
    name: `mway-peer-${o.peerId}`,
  });
  const dom = o.domain === undefined ? {} : { domain: o.domain };
  const jsm: JetStreamManager = await jetstreamManager(nc, { checkAPI: false, ...dom });
  const js: JetStreamClient = jetstream(nc, { timeout: 5000, ...dom });
  const subject = mailboxSubject(o.peerId);
  let persisted = await readCursor(o.cursorFile);
  let next = persisted + 1;
  /** Stream sequences delivered to the link and not yet answered, by job id. */
  const open = new Map<string, number>();
  /** Stream sequences read ahead and not yet handed to the link. */
  const unread = new Set<number>();
  let closed = false;
  let saving: Promise<void> = Promise.resolve();

  // The cursor moves to just before the oldest delivery still unanswered or unhanded: a crash re-reads
  // that one (the replay cache answers it again without running it), never skips one.
  const advance = (): void => {
    const oldest = Math.min(next, ...open.values(), ...unread);
    const seq = oldest - 1;
    if (seq <= persisted) return;
    persisted = seq;
    saving = saving
      .then(() => writeJsonAtomic(o.cursorFile, { v: 1, stream: CMD_STREAM, seq }))
      .catch((e) => o.log('error', `control: cannot save the NATS mailbox cursor: ${errorMessage(e)}`));
  };

  type Stored = NonNullable<Awaited<ReturnType<typeof jsm.streams.getMessage>>>;
  /** The subjects read: the mailbox, then the subject of each group the peer holds now. */
  const subjects = (): string[] => [subject, ...(o.groups?.() ?? []).map(groupSubject)];
  /** Per subject, its next stored message at or after `next`, or null (none at the last look). */
  const ahead = new Map<string, Stored | null>();
  /** Since when reading has failed without a verdict (no leader, no responders), and whether said. */
  let failingSince: number | undefined;
  let warned = false;
  const look = async (subj: string): Promise<Stored | null> => {
    for (;;) {
      try {
        // STREAM.MSG.GET with next_by_subj (NATS ≥ 2.9): answered by the stream leader.
        const m = await jsm.streams.getMessage(CMD_STREAM, { seq: next, next_by_subj: subj } as never);
        failingSince = undefined;
        warned = false;
        return m;
      } catch (e) {
        if (isNotFound(e)) {
          failingSince = undefined;
          warned = false;
        }
        if (isNotFound(e) || closed) return null;
        if (isPermissionDenied(e)) {
          // The servers' permissions do not let this peer read the stream: a config error
          // retrying cannot fix; the next poll tries again (doc/nats.md).
          o.log('error', `control: NATS refused reading ${subj}: ${errorMessage(e)}`);
          return null;
        }
        // No leader yet (failover), or the connection is reconnecting: try again shortly. Said
        // once when it lasts: a peer behind a leaf node without nats.domain gets no responders
        // forever (doc/nats.md, "A leaf node for a site").
        failingSince ??= Date.now();
        if (!warned && Date.now() - failingSince > READ_WARN_MS) {
          warned = true;
          o.log(
            'warn',
            `control: cannot read the NATS mailbox for ${READ_WARN_MS / 1000} s (${errorMessage(e)}); retrying (behind a leaf node, nats.domain names the cluster's JetStream domain)`,
          );
        }
        await pause(250);
      }
    }
  };
  /**
   * The lowest stored sequence over all the subjects. A subject found empty counts only if it
   * was read after every candidate was already stored (sequences are given in storage order, so
   * nothing below a candidate can appear later): subjects found empty are read again until a
   * round finds nothing new.
   */
  const nextStored = async (): Promise<{ subj: string; m: Stored } | undefined> => {
    const want = subjects();
    for (const k of ahead.keys()) if (!want.includes(k)) ahead.delete(k);
    for (let found = true; found && !closed; ) {
      found = false;
      for (const subj of want.filter((x) => (ahead.get(x) ?? null) === null)) {
        const m = await look(subj);
        ahead.set(subj, m);
        if (m !== null) found = true;
      }
    }
    let best: { subj: string; m: Stored } | undefined;
    for (const [subj, m] of ahead)
      if (m !== null && (best === undefined || m.seq < best.m.seq)) best = { subj, m };
    if (best !== undefined) ahead.delete(best.subj);
    return best;
  };

  /**
   * Reads what is stored now, up to READ_AHEAD messages or bytes, so a cancellation stored
   * behind its command is seen before the command is handed on (nats-backlog.ts). Junk and
   * group commands that do not name this peer are skipped here.
   */
  const readAhead = async (): Promise<BacklogItem[]> => {
    const items: BacklogItem[] = [];
    let bytes = 0;
    while (items.length < READ_AHEAD && bytes < READ_AHEAD_BYTES && !closed) {
      const got = await nextStored();
      if (got === undefined) break;
      const { subj, m } = got;
      const seq = m.seq;
      next = seq + 1;
      let msg: Message;
      try {
        msg = decodeBody(m.data);
        if (msg.kind !== 'command-deliver' && (subj !== subject || msg.kind !== 'membership-deliver'))
          throw new ControlError('E_PROTOCOL', `unexpected ${msg.kind} on ${subj}`);
      } catch (e) {
        o.log('warn', `control: NATS mailbox message ${seq} ignored: ${errorMessage(e)}`);
        advance();
        continue;
      }
      // A group's command is for the members its operator resolved when signing; a member
      // that joined since is not named and leaves it to the others, without an answer (the
      // executor would refuse it E_CMD_NOT_ADDRESSED anyway: this only spares the refusal).
      if (subj !== subject && !namesPeer(msg, o.peerId)) {
        advance();
        continue;
      }
      unread.add(seq);
      items.push({ seq, msg });
      bytes += m.data.length;
    }
    return items;
  };

  /** Answers the link owes for what it was handed: `r:<job>` per command, `m:<group>` per membership. */
  const owed = new Map<string, number>();
  let onPaid: (() => void) | undefined;
  const owe = (k: string): void => void owed.set(k, (owed.get(k) ?? 0) + 1);
  const pay = (k: string): void => {
    const n = owed.get(k);
    if (n === undefined) return;
    if (n > 1) owed.set(k, n - 1);
    else owed.delete(k);
    if (owed.size === 0) onPaid?.();
  };
  /** Waits until the link answered everything it was handed (bounded: a failed run never answers). */
  const settled = async (why: string): Promise<void> => {
    if (owed.size === 0) return;
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), SETTLE_MS);
      onPaid = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    onPaid = undefined;
    if (!ok && !closed) {
      o.log(
        'warn',
        `control: ${why}: ${owed.size} message(s) handed on got no answer within ${SETTLE_MS / 1000} s; going on`,
      );
      owed.clear();
    }
  };
  const hand = (it: BacklogItem): void => {
    unread.delete(it.seq);
    const msg = it.msg;
    if (msg.kind === 'command-deliver') {
      open.set(msg.jobId as string, it.seq);
      owe(`r:${msg.jobId as string}`);
    } else owe(`m:${msg.group as string}`);
    o.onMessage(msg);
    advance();
  };

  let pumping = false;
  let again = false;
  const pump = async (): Promise<void> => {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        while (!closed) {
          const items = await readAhead();
          if (closed) break;
          if (items.length === 0) {
            // The wake-up (core NATS, sent as the servers receive a message) can overtake the
            // stream's store (a quorum of R3): keep reading shortly after one, or the message
            // would wait for the next poll (measured: 2 s round trips without this).
            if (Date.now() - wokeAt < WAKE_GRACE_MS) {
              await pause(5);
              continue;
            }
            break;
          }
          for (const step of handOutOrder(items)) {
            if (closed) break;
            if (!step.alone) {
              hand(step.item);
              continue;
            }
            // A cancellation ahead of its command: the link has answered all before it (a
            // membership it needs may be there), and answers it before the command is handed.
            const what = `cancellation ${step.item.msg.jobId as string}`;
            await settled(what);
            if (closed) break;
            hand(step.item);
            await settled(what);
          }
        }
      } while (again && !closed);
    } finally {
      pumping = false;
    }
  };

  // The broker side sends a payload-free wake-up after each store (nats-subjects.ts,
  // wakeSubject): the data is read from the stream, in order. A message stored without one
  // (another publisher, a lost wake-up) is read at the next poll.
  let wokeAt = 0;
  const wake = (subj: string): void => {
    if (subjects().includes(wokenSubject(subj))) wokeAt = Date.now();
    void pump();
  };
  const sub = nc.subscribe(wakeSubject(subject), { callback: (_e, m) => wake(m.subject) });
  // Group commands wake every peer (the group wake-ups are open to all peers, see
  // nats-permissions.ts); a peer reads only its own groups' subjects from the stream.
  const groupSub = nc.subscribe(ALL_GROUP_WAKES, { callback: (_e, m) => wake(m.subject) });
  const timer = setInterval(() => void pump(), o.pollMs ?? 2000);
  void pump();
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') void pump();
  })().catch(() => {});

  const publishStored = async (subj: string, body: Uint8Array, msgID: string): Promise<void> => {
    // Retried until stored: the message id makes a retry after a lost ack a no-op.
    for (let delay = 100; !closed; delay = Math.min(2000, delay * 2)) {
      try {
        // Not `expect: {streamName}`: that header travels with the message into the audit
        // stream, which then refuses it (it is not MWAY_RES). The ack names the stream instead.
        const ack = await js.publish(subj, body, { msgID });
        if (ack.stream !== RES_STREAM)
          throw new ControlError('E_NATS_UNAVAILABLE', `stored in ${ack.stream}, not ${RES_STREAM}`);
        return;
      } catch (e) {
        o.log('warn', `control: NATS publish on ${subj} failed (${errorMessage(e)}); retrying`);
        await pause(delay);
      }
    }
  };

  const closedP = nc.closed().then((e) => {
    closed = true;
    clearInterval(timer);
    return e instanceof Error ? e : undefined;
  });

  return {
    send(kind, fields = {}) {
      if (closed) throw new ControlError('E_CONNECTION_CLOSED', 'NATS session closed');
      const m = message(kind, fields);
      if (kind === 'command-ack') return; // the stream is the delivery record
      if (kind === 'status') {
        nc.publish(statusSubject(o.peerId), messageBody(m));
        return;
      }
      if (kind === 'result') {
        const jobId = fields.jobId as string;
        pay(`r:${jobId}`);
        void publishStored(resultSubject(o.peerId, jobId), messageBody(m), answerMsgId(o.peerId, jobId)).then(
          () => {
            open.delete(jobId);
            advance();
          },
        );
        return;
      }
      if (kind === 'membership-ack') {
        pay(`m:${fields.group as string}`);
        const id = `membership.${fields.group as string}.${Date.now()}`;
        void publishStored(resultSubject(o.peerId, id), messageBody(m), answerMsgId(o.peerId, id));
        return;
      }
      throw new ControlError('E_PROTOCOL', `A peer does not send ${kind} over NATS`);
    },
    close() {
      closed = true;
      clearInterval(timer);
      sub.unsubscribe();
      groupSub.unsubscribe();
      void saving.finally(() => nc.close());
    },
    closed: closedP,
  };
}
