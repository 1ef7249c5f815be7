// The broker side of NATS mode (doc/nats.md): it sets up the two streams and stores each
// delivery in a peer's mailbox, de-duplicated by job and peer, and reads the peers' answers
// back. What it stores are the wire's own messages carrying the operator-signed command; the
// peer checks them exactly as over TLS, so the servers (like the broker) can drop or delay,
// never forge, retarget or replay. A publish is retried until the cluster stores it (a stream
// leader killed mid-rollout is replaced in seconds) and the message id keeps a retry from
// being stored twice.
// The NATS client is loaded only when NATS mode is used (an agent or broker without it never loads it).
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../../keys/index.ts';
import {
  ALL_ENROLL,
  CMD_STREAM,
  ControlError,
  connectNats,
  decodeBody,
  deliveryMsgId,
  groupMsgId,
  groupSubject,
  type Message,
  mailboxSubject,
  message,
  messageBody,
  RES_STREAM,
  resultSubject,
  streamConfigs,
  wakeSubject,
} from '../wire/index.ts';

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Stored {
  /** The delivery's sequence in the commands stream. */
  seq: number;
  /** The servers already held this job's delivery to this peer (a retry). */
  duplicate: boolean;
}

export class NatsRelay {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;

  /** The server the connection was lost to, while the client reconnects (health). */
  #lost: string | undefined;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, js: JetStreamClient) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = js;
    // The client reconnects by itself; only its status events say that it is cut off meanwhile.
    void (async () => {
      for await (const st of nc.status()) {
        if (st.type === 'disconnect') this.#lost = st.server;
        else if (st.type === 'reconnect') this.#lost = undefined;
      }
    })().catch(() => {});
  }

  /** Connects as the broker's NATS user (`nkey`: its seed file; doc/nats.md). */
  static async open(o: { servers: string[]; name?: string; nkey?: string; ca?: string }): Promise<NatsRelay> {
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connectNats({
      servers: o.servers,
      who: { role: 'broker' },
      nkey: o.nkey,
      ca: o.ca,
      name: o.name ?? 'milkywaysrvd',
    });
    return new NatsRelay(
      nc,
      await jetstreamManager(nc, { checkAPI: false }),
      jetstream(nc, { timeout: 3000 }),
    );
  }

  /** Creates the streams, or brings an existing one's configuration to ours. */
  async ensureStreams(replicas: number): Promise<void> {
    for (const cfg of streamConfigs(replicas)) {
      const name = cfg.name as string;
      const exists = await this.#jsm.streams.info(name).then(
        () => true,
        () => false,
      );
      if (exists) await this.#jsm.streams.update(name, cfg as never);
      else await this.#jsm.streams.add(cfg as never);
    }
  }

  async #store(subject: string, body: Uint8Array, msgID: string, deadlineMs: number): Promise<Stored> {
    const end = Date.now() + deadlineMs;
    let last: unknown;
    for (let delay = 100; Date.now() < end; delay = Math.min(1000, delay * 2)) {
      try {
        // Not `expect: {streamName}`: that header travels with the message into the audit
        // stream, which then refuses it (it is not MWAY_CMD). The ack names the stream instead.
        const ack = await this.#js.publish(subject, body, { msgID });
        if (ack.stream !== CMD_STREAM)
          throw new ControlError(
            'E_NATS_UNAVAILABLE',
            `${msgID} was stored in ${ack.stream}, not ${CMD_STREAM}`,
          );
        // After the ack: the stream's leader holds it, so the peer's read finds it.
        this.#nc.publish(wakeSubject(subject));
        return { seq: ack.seq, duplicate: ack.duplicate };
      } catch (e) {
        last = e;
        await pause(delay);
      }
    }
    throw new ControlError(
      'E_NATS_UNAVAILABLE',
      `NATS did not store ${msgID} on ${subject} within ${deadlineMs} ms: ${String(last)}`,
    );
  }

  /** Stores job `jobId`'s operator-signed command in `peerId`'s mailbox. */
  deliver(
    peerId: string,
    jobId: string,
    command: Envelope,
    expiresAt: string,
    deadlineMs = 60_000,
  ): Promise<Stored> {
    const m = message('command-deliver', { jobId, command, expiresAt });
    return this.#store(mailboxSubject(peerId), messageBody(m), deliveryMsgId(jobId, peerId), deadlineMs);
  }

  /**
   * Stores job `jobId`'s command once for every member of `group` (its subject): the envelope
   * is the same for all of them (its audience names each resolved peer), and each member checks
   * it as if it were in its own mailbox.
   */
  deliverGroup(
    group: string,
    jobId: string,
    command: Envelope,
    expiresAt: string,
    deadlineMs = 60_000,
  ): Promise<Stored> {
    const m = message('command-deliver', { jobId, command, expiresAt });
    return this.#store(groupSubject(group), messageBody(m), groupMsgId(jobId, group), deadlineMs);
  }

  /** Stores a signed membership statement (or its removal) in `peerId`'s mailbox. */
  deliverMembership(
    peerId: string,
    fields: { group: string; op: 'put' | 'delete'; membership: Envelope; id: string },
    deadlineMs = 60_000,
  ): Promise<Stored> {
    const m = message('membership-deliver', {
      group: fields.group,
      peerId,
      op: fields.op,
      membership: fields.membership,
    });
    return this.#store(mailboxSubject(peerId), messageBody(m), deliveryMsgId(fields.id, peerId), deadlineMs);
  }

  /**
   * The peer's answer to job `jobId` (its `result` message, the signed result inside: the
   * caller verifies it), or undefined when none is stored within `timeoutMs`.
   */
  async answer(peerId: string, jobId: string, timeoutMs: number): Promise<Message | undefined> {
    const subject = resultSubject(peerId, jobId);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      try {
        const m = await this.#jsm.streams.getMessage(RES_STREAM, { last_by_subj: subject });
        if (m !== null) return decodeBody(m.data);
      } catch {
        // not there yet, or no leader for the moment
      }
      await pause(100);
    }
    return undefined;
  }

  /**
   * Calls `on` with every answer stored in MWAY_RES, in stream order from sequence `from`, as
   * it arrives (a subscription wakes the reader; it also reads every second), until stopped.
   */
  followAnswers(on: (subject: string, body: Uint8Array, seq: number) => void, from = 1): { stop(): void } {
    let next = from;
    let stopped = false;
    let pumping = false;
    let wokeAt = 0;
    const pump = async (): Promise<void> => {
      if (pumping || stopped) return;
      pumping = true;
      try {
        while (!stopped) {
          let m: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>> = null;
          try {
            m = await this.#jsm.streams.getMessage(RES_STREAM, {
              seq: next,
              next_by_subj: 'mway.res.>',
            } as never);
          } catch {
            // past the end, or no leader for the moment: the next wake-up reads on
          }
          if (m === null) {
            // A wake-up (core NATS) can overtake the stream's store: keep reading shortly after
            // one, and a wake-up during this pass is not lost either.
            if (Date.now() - wokeAt < 300) {
              await pause(5);
              continue;
            }
            break;
          }
          next = m.seq + 1;
          on(m.subject, m.data, m.seq);
        }
      } finally {
        pumping = false;
      }
    };
    const sub = this.#nc.subscribe('mway.res.>', {
      callback: () => {
        wokeAt = Date.now();
        void pump();
      },
    });
    const timer = setInterval(() => void pump(), 1000);
    void pump();
    return {
      stop() {
        stopped = true;
        clearInterval(timer);
        sub.unsubscribe();
      },
    };
  }

  /**
   * Answers every enrollment question (core NATS request/reply on `mway.enroll.*`) with what `on`
   * returns for it; a message without a reply subject gets no answer.
   */
  serveEnrollment(on: (subject: string, body: Uint8Array) => Uint8Array): { stop(): void } {
    const sub = this.#nc.subscribe(ALL_ENROLL, {
      callback: (_e, m) => {
        if (m.reply !== undefined && m.reply !== '') m.respond(on(m.subject, m.data));
      },
    });
    return { stop: () => sub.unsubscribe() };
  }

  /** MWAY_RES's creation time and last sequence (the broker's answers cursor checks them). */
  async answersState(): Promise<{ created: string; lastSeq: number }> {
    const i = await this.#jsm.streams.info(RES_STREAM);
    return { created: String(i.created), lastSeq: i.state.last_seq };
  }

  /** Calls `on` with every status a peer publishes (core NATS: only while connected). */
  followStatus(on: (subject: string, body: Uint8Array) => void): { stop(): void } {
    const sub = this.#nc.subscribe('mway.status.*', { callback: (_e, m) => on(m.subject, m.data) });
    return { stop: () => sub.unsubscribe() };
  }

  /** Why the connection to the cluster is not usable now, or undefined when it is (health). */
  problem(): string | undefined {
    if (this.#nc.isClosed()) return 'the NATS connection is closed';
    if (this.#nc.isDraining()) return 'the NATS connection is draining';
    if (this.#lost !== undefined) return `disconnected from ${this.#lost}; reconnecting`;
    return undefined;
  }

  async close(): Promise<void> {
    await this.#nc.drain().catch(() => this.#nc.close());
  }
}
