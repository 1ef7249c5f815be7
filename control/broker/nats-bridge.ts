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
  onMembershipAck(peerId: string, group: string, op: string, refusal: string | null, ack: unknown): void;
}

export function startNatsBridge(b: BrokerContext, relay: NatsRelay, sink: PeerAnswerSink): { stop(): void } {
  const refuse = (what: string, subject: string, e: unknown) =>
    b.log(
      'warn',
      `broker: ${what} on NATS ${subject} ignored: ${(e as { code?: string }).code ?? ''} ${errorMessage(e)}`,
      { subject, code: (e as { code?: string }).code },
    );
  const answers = relay.followAnswers((subject, body) => {
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
  });
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
    },
  };
}
