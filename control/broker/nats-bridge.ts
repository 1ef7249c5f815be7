// milkywaysrvd in NATS mode (doc/nats.md): the peers' answers and statuses come from NATS, not
// from TLS sessions, so the peer is named by its signature, never by the subject an untrusted
// server delivered it on. A result is verified (chain to the anchors, CRLs) and must sit under
// its signer's own subject before the job bookkeeping sees it; a status must be its signer's and
// makes the peer known to the broker as a TLS hello would. Enrollment questions are answered
// here too (nats-enroll.ts).
import { errorMessage } from '../../common/index.ts';
import type { Envelope } from '../../keys/index.ts';
import {
  decodeBody,
  type Outcome,
  resultSubject,
  statusSubject,
  verifyResult,
  verifyStatus,
} from '../wire/index.ts';
import type { BrokerContext } from './broker-context.ts';
import { startNatsEnrollment } from './nats-enroll.ts';
import type { NatsRelay } from './nats-relay.ts';

/** What the bridge hands on (BrokerJobs implements it). */
export interface PeerAnswerSink {
  onPeerResult(peerId: string, actor: string, jobId: string, outcome: Outcome, result: unknown): void;
  /** Commits the results handed over so far (before the answers cursor moves past them). */
  flushResults(): void;
  onMembershipAck(peerId: string, group: string, op: string, refusal: string | null, ack: unknown): void;
}

/** Where the broker keeps how far it has read MWAY_RES (its `state` table; doc/nats.md). */
const CURSOR_KEY = 'nats.res.cursor';
/** How often the cursor is saved (after committing what was read). */
const SAVE_MS = 1000;

/**
 * The MWAY_RES sequence to read from: after the one saved, unless the stream is not the one the
 * cursor was saved for (created again) or is behind it, then from its start (duplicates are
 * ignored, nothing is skipped).
 */
function resumeAt(b: BrokerContext, state: { created: string; lastSeq: number }): number {
  const raw = b.db.state(CURSOR_KEY);
  if (raw === undefined) return 1;
  try {
    const c = JSON.parse(raw) as { created?: unknown; next?: unknown };
    if (
      c.created === state.created &&
      Number.isSafeInteger(c.next) &&
      (c.next as number) >= 1 &&
      (c.next as number) <= state.lastSeq + 1
    )
      return c.next as number;
  } catch {
    // unreadable: read from the start
  }
  b.log(
    'warn',
    `broker: NATS answers cursor ${raw} does not fit MWAY_RES (created ${state.created}, last ${state.lastSeq}); reading it from the start`,
  );
  return 1;
}

export async function startNatsBridge(
  b: BrokerContext,
  relay: NatsRelay,
  sink: PeerAnswerSink,
): Promise<{ stop(): void }> {
  const state = await relay.answersState();
  const from = resumeAt(b, state);
  if (from > 1) b.log('info', `broker: reading NATS answers from MWAY_RES sequence ${from}`);
  let read = from - 1;
  let saved = read;
  // The cursor moves only past answers whose results are committed: a crash re-reads, never skips.
  const save = (): void => {
    if (read === saved) return;
    try {
      sink.flushResults();
      b.db.setState(CURSOR_KEY, JSON.stringify({ created: state.created, next: read + 1 }));
      saved = read;
    } catch (e) {
      b.log('warn', `broker: cannot save the NATS answers cursor: ${errorMessage(e)}`);
    }
  };
  const timer = setInterval(save, SAVE_MS);
  const refuse = (what: string, subject: string, e: unknown) =>
    b.log(
      'warn',
      `broker: ${what} on NATS ${subject} ignored: ${(e as { code?: string }).code ?? ''} ${errorMessage(e)}`,
      { subject, code: (e as { code?: string }).code },
    );
  const answers = relay.followAnswers((subject, body, seq) => {
    read = seq;
    try {
      const m = decodeBody(body);
      if (m.kind === 'membership-ack') {
        // The signed ack, not the unsigned fields beside it, says applied or refused, and whose.
        const r = verifyResult(m.ack as Envelope, {
          anchors: b.anchors,
          ...(b.crls === undefined ? {} : { crls: b.crls }),
        });
        const peerId = r.signer.peerId;
        if (peerId === undefined || !subject.startsWith(`${resultSubject(peerId, 'x').slice(0, -1)}`))
          throw new Error(`signed by ${r.signer.subject}, which is not this subject's peer`);
        const refusal = r.payload.status === 'ok' ? null : (r.payload.code ?? 'E_MEMBERSHIP_INVALID');
        sink.onMembershipAck(peerId, m.group as string, m.op as string, refusal, m.ack);
        return;
      }
      if (m.kind !== 'result') throw new Error(`a ${m.kind} message`);
      const { signer } = verifyResult(m.result as Envelope, {
        anchors: b.anchors,
        ...(b.crls === undefined ? {} : { crls: b.crls }),
      });
      const peerId = signer.peerId;
      const jobId = m.jobId as string;
      if (peerId === undefined || resultSubject(peerId, jobId) !== subject)
        throw new Error(`signed by ${signer.subject}, which is not this subject's peer`);
      sink.onPeerResult(peerId, `peer:${peerId}`, jobId, m.outcome as Outcome, m.result);
    } catch (e) {
      refuse('answer', subject, e);
    }
  }, from);
  const status = relay.followStatus((subject, body) => {
    try {
      const m = decodeBody(body);
      if (m.kind !== 'status') throw new Error(`a ${m.kind} message`);
      const { signer } = verifyStatus(m.status as Envelope, {
        anchors: b.anchors,
        ...(b.crls === undefined ? {} : { crls: b.crls }),
      });
      const peerId = signer.peerId;
      if (peerId === undefined || statusSubject(peerId) !== subject)
        throw new Error(`signed by ${signer.subject}, which is not this subject's peer`);
      const now = b.now().toISOString();
      b.db.upsertPeer({
        peerId,
        name: signer.subject,
        fingerprint: signer.fingerprint,
        certificate: signer.pem,
        now,
      });
      b.db.setPeerStatus(peerId, m.status, now);
    } catch (e) {
      refuse('status', subject, e);
    }
  });
  // Machines without a certificate enroll through NATS as over TLS (nats-enroll.ts).
  const enrollment = startNatsEnrollment(b, relay);
  return {
    stop() {
      answers.stop();
      status.stop();
      enrollment.stop();
      clearInterval(timer);
      save();
    },
  };
}
