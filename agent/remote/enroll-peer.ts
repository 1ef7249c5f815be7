// The peer side of enrollment (control/wire/enrollment.ts has the request format): ask the
// broker to have this key certified and wait for an operator's answer.
import type { Certificate } from '../../keys/index.ts';
import { ControlError, connectBroker, type EnrollmentRequest } from '../../control/wire/index.ts';

/**
 * Peer side of enrollment: connects without a client certificate (trusting only a broker
 * that chains to `anchors`), sends the request, and polls until an operator accepts
 * (resolves with the PEM chain) or rejects (E_ENROLL_REJECTED), or `timeoutMs` passes
 * (E_TIMEOUT). The caller saves the certificate next to its key and reconnects with it.
 */
export async function enrollPeer(o: {
  address: string;
  anchors: readonly Certificate[];
  request: EnrollmentRequest;
  brokerFingerprint?: string;
  pollMs?: number;
  timeoutMs?: number;
  /** Polled between questions: true ends the wait (resolves undefined). */
  stopped?: () => boolean;
}): Promise<{ certificate: string; requestId: string; fingerprint: string } | undefined> {
  const c = await connectBroker({
    address: o.address,
    tls: { ca: o.anchors.map((a) => a.pem) },
    role: 'peer',
    ...(o.brokerFingerprint === undefined ? {} : { brokerFingerprint: o.brokerFingerprint }),
  });
  try {
    const r = await c.request('enroll-request', { request: o.request });
    const requestId = r.requestId as string;
    const deadline = Date.now() + (o.timeoutMs ?? 3_600_000);
    for (;;) {
      if (o.stopped?.() === true) return undefined;
      const s = await c.request('enroll-status', { requestId });
      if (s.state === 'accepted' && typeof s.certificate === 'string') {
        return { certificate: s.certificate, requestId, fingerprint: r.fingerprint as string };
      }
      if (s.state === 'rejected') {
        throw new ControlError('E_ENROLL_REJECTED', `Enrollment ${requestId} was rejected by an operator`);
      }
      if (Date.now() >= deadline) {
        throw new ControlError('E_TIMEOUT', `Enrollment ${requestId} was not accepted in time`);
      }
      // Short sleeps so a stopping agent is not held for a whole poll interval.
      const until = Date.now() + Math.min(o.pollMs ?? 5000, Math.max(0, deadline - Date.now()));
      while (Date.now() < until && o.stopped?.() !== true)
        await new Promise((res) => setTimeout(res, Math.min(200, until - Date.now())));
    }
  } finally {
    c.close();
  }
}
