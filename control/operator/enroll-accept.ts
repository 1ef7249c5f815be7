// Accepting an enrollment request: a peer certificate issued for exactly the requested keys
// with the operator's peer-issuer key (the user root's delegation, doc/certificate-profile.md:
// the root stays offline and the broker never holds a CA key), handed to the broker with the
// peer issuer's certificate (the chain the peer presents from then on), and the memberships
// signed. `mway peers accept` does it by hand, `mway peers autosign` for requests
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
import { OperatorError } from './operator-error.ts';

/**
 * Refuses an issuer that is not a peer issuer before anything is issued. The role table would
 * let the user root issue the certificate too; accepting machines with it would mean keeping
 * the root's key where enrollment runs, which is what the peer issuer exists to avoid.
 */
export function assertPeerIssuer(issuerCert: Certificate, where: string): void {
  if (issuerCert.role === 'peer-issuer') return;
  throw new OperatorError(
    'E_ENROLL_ISSUER',
    `${where} is ${issuerCert.subject} (${issuerCert.role}), not a peer issuer: machines are accepted with the peer issuer's key so the user root stays offline (mway keys new --role peer-issuer --name peer-issuer --out pki --issuer-key ROOT.key --issuer-cert ROOT.crt)`,
    { path: where },
  );
}

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
  assertPeerIssuer(o.issuerCert, '--issuer-cert');
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
