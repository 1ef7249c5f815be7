// Accepting an enrollment request: a peer certificate issued for exactly the requested keys
// (the operator's issuer key; the broker never holds one), handed to the broker, and the
// memberships signed. `mway peers accept` does it by hand, `mway peers autosign` for requests
// carrying a valid enrollment token (enroll-autosign.ts).
import {
  type Certificate,
  certificatePem,
  issueCertificate,
  publicKeyFromRaw,
  type SigningKey,
} from '../../keys/index.ts';
import type { CheckedEnrollment } from '../wire/index.ts';
import type { OperatorClient } from './operator-client.ts';

export interface AcceptOptions {
  issuerKey: SigningKey;
  issuerCert: Certificate;
  peerId: string;
  /** Replace the labels the machine asked for (undefined: keep them). */
  labels?: Record<string, string>;
  /** Groups to sign memberships of; the peer applies them when it connects. */
  groups: readonly string[];
  days?: number;
  /** Take over a peer id another certificate holds (a reinstall). */
  replace?: boolean;
}

export async function acceptEnrollment(
  c: OperatorClient,
  req: CheckedEnrollment,
  o: AcceptOptions,
): Promise<void> {
  const subjectKey = {
    algorithm: req.payload.algorithm,
    publicKey: publicKeyFromRaw(req.payload.algorithm, req.publicKey),
  } as SigningKey;
  const cert = await issueCertificate({
    role: 'peer',
    name: req.payload.name,
    subjectKey,
    issuerKey: o.issuerKey,
    issuerCert: o.issuerCert,
    peerId: o.peerId,
    kemPublicKey: req.kemPublicKey,
    ...(o.days === undefined ? {} : { days: o.days }),
  });
  const pem = certificatePem(cert.der) + certificatePem(o.issuerCert.der);
  await c.client.request('enrollment-accept', {
    requestId: req.requestId,
    certificate: pem,
    ...(o.labels === undefined ? {} : { labels: o.labels }),
    ...(o.replace === true ? { replace: true } : {}),
  });
  // The peer is known now: its memberships wait on the broker until it connects.
  for (const g of o.groups) await c.setMember(g, o.peerId, true);
}
