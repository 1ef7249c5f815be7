// Enrollment over NATS (doc/nats.md, "Enrolling through NATS"): a machine without a certificate
// asks milkywaysrvd for one on `mway.enroll.<requestId>` (core NATS request/reply), with the same
// signed request and the same questions as over TLS (`enroll-request`, then `enroll-status` until
// an operator decides). It connects as the shared enrolling user. The servers and the broker are
// untrusted: the certificate it gets is checked by the caller (chain to the anchors, for its own
// keys) before it is saved, as over TLS.
import type { NatsConnection } from '@nats-io/transport-node';
import { errorMessage } from '../../common/index.ts';
import { ControlError } from './control-error.ts';
import { checkEnrollmentRequest, type EnrollmentRequest } from './enrollment.ts';
import { connectNats } from './nats-connect.ts';
import { enrollSubject } from './nats-subjects.ts';
import { decodeBody, type Message, message } from './protocol.ts';
import { messageBody } from './nats-peer.ts';

export interface NatsEnrollOptions {
  servers: string[];
  /** The enrolling user's nkey seed file (shared by every enrolling machine). */
  nkey?: string | undefined;
  /** PEM file of the CA of the servers' TLS certificates (nats-connect.ts). */
  ca?: string | undefined;
  request: EnrollmentRequest;
  pollMs?: number;
  timeoutMs?: number;
  /** Each question's own deadline (no answer: the broker is down, or no responder yet). */
  askMs?: number;
  /** Polled between questions: true ends the wait (resolves undefined). */
  stopped?: () => boolean;
  log?: (level: 'info' | 'warn', message: string) => void;
}

/**
 * Sends the request and asks until an operator accepts (the PEM chain) or rejects
 * (E_ENROLL_REJECTED), or `timeoutMs` passes (E_TIMEOUT). A question without an answer (no
 * broker listening, a lost message) is asked again at the next poll.
 */
export async function enrollOverNats(
  o: NatsEnrollOptions,
): Promise<{ certificate: string; requestId: string; fingerprint: string } | undefined> {
  const { requestId, fingerprint } = checkEnrollmentRequest(o.request);
  const nc: NatsConnection = await connectNats({
    servers: o.servers,
    who: { role: 'enroll' },
    nkey: o.nkey,
    ca: o.ca,
    name: `mway-enroll-${requestId}`,
  });
  let id = 0;
  const ask = async (kind: 'enroll-request' | 'enroll-status', fields: Record<string, unknown>) => {
    id += 1;
    const body = messageBody(message(kind, { ...fields, id }));
    const r = await nc.request(enrollSubject(requestId), body, { timeout: o.askMs ?? 5000 });
    const m: Message = decodeBody(r.data);
    if (m.re !== id) throw new ControlError('E_PROTOCOL', `Enrollment answer to ${String(m.re)}, not ${id}`);
    if (m.kind === 'error')
      throw new ControlError(
        String(m.code) === 'E_ENROLL_UNKNOWN' ? 'E_ENROLL_UNKNOWN' : 'E_PROTOCOL',
        `Broker refused ${kind}: ${String(m.code)} ${String(m.message)}`,
      );
    if (m.kind !== 'reply') throw new ControlError('E_PROTOCOL', `Enrollment answer is a ${m.kind}`);
    return m;
  };
  const sleep = async (ms: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until && o.stopped?.() !== true)
      await new Promise((res) => setTimeout(res, Math.min(200, until - Date.now())));
  };
  try {
    const deadline = Date.now() + (o.timeoutMs ?? 3_600_000);
    let sent = false;
    for (;;) {
      if (o.stopped?.() === true) return undefined;
      try {
        // The request is sent until one is answered; then the broker holds it and is asked.
        // A broker that lost it (a sweep of stale requests) says E_ENROLL_UNKNOWN: send again.
        if (!sent) {
          await ask('enroll-request', { request: o.request });
          sent = true;
        }
        const s = await ask('enroll-status', { requestId });
        if (s.state === 'accepted' && typeof s.certificate === 'string')
          return { certificate: s.certificate, requestId, fingerprint };
        if (s.state === 'rejected')
          throw new ControlError('E_ENROLL_REJECTED', `Enrollment ${requestId} was rejected by an operator`);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'E_ENROLL_REJECTED') throw e;
        if (code === 'E_ENROLL_UNKNOWN') sent = false;
        else o.log?.('warn', `control: enrollment over NATS: ${errorMessage(e)}; asking again`);
      }
      if (Date.now() >= deadline)
        throw new ControlError('E_TIMEOUT', `Enrollment ${requestId} was not accepted in time`);
      await sleep(Math.min(o.pollMs ?? 5000, Math.max(0, deadline - Date.now())));
    }
  } finally {
    await nc.close().catch(() => {});
  }
}
