// milkywaysrvd answers enrollment over NATS (doc/nats.md, "Enrolling through NATS"): the same
// `enroll-request` and `enroll-status` as an anonymous TLS connection sends, handled by the
// same code (answerEnrollment), so the request is checked and kept pending exactly as over TLS
// and `mway peers accept` needs nothing new. The one check NATS adds: a question travels on its
// key's own subject (`mway.enroll.<requestId>`), so the subject names the key that signed it.
import { errorMessage, isMilkyWayError } from '../../common/index.ts';
import {
  checkEnrollmentRequest,
  ControlError,
  decodeBody,
  enrollSubject,
  type Message,
  message,
  messageBody,
} from '../wire/index.ts';
import type { BrokerContext } from './broker-context.ts';
import { answerEnrollment } from './broker-requests.ts';
import type { NatsRelay } from './nats-relay.ts';

/** The answer (a wire `reply` or `error`) to one enrollment question received on `subject`. */
export function answerNatsEnrollment(b: BrokerContext, subject: string, body: Uint8Array): Uint8Array {
  let m: Message | undefined;
  try {
    m = decodeBody(body);
    if (m.kind !== 'enroll-request' && m.kind !== 'enroll-status')
      throw new ControlError('E_FORBIDDEN', `An enrolling machine may not send ${m.kind}`);
    if (m.id === undefined) throw new ControlError('E_PROTOCOL', `${m.kind} over NATS needs an id`);
    const requestId =
      m.kind === 'enroll-status' ? String(m.requestId) : checkEnrollmentRequest(m.request, b.now()).requestId;
    if (enrollSubject(requestId) !== subject)
      throw new ControlError(
        'E_ENROLL_INVALID',
        `Enrollment question for ${requestId} arrived on ${subject}, not on its key's subject`,
      );
    return messageBody(message('reply', { ...answerEnrollment(b, m), re: m.id }));
  } catch (e) {
    const ours = isMilkyWayError(e);
    if (!ours) b.log('error', `broker: enrollment over NATS on ${subject} failed: ${errorMessage(e)}`);
    return messageBody(
      message('error', {
        ...(m?.id === undefined ? {} : { re: m.id }),
        code: ours ? e.code : 'E_BROKER_INTERNAL',
        message: ours ? e.message : 'Broker failed on an enrollment question',
      }),
    );
  }
}

export function startNatsEnrollment(b: BrokerContext, relay: NatsRelay): { stop(): void } {
  return relay.serveEnrollment((subject, body) => answerNatsEnrollment(b, subject, body));
}
