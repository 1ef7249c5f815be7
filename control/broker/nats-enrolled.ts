// NATS users derived from our PKI (doc/nats.md, "Credentials from our PKI"): a machine that
// enrolled in NATS mode put its nkey public key in its enrollment request, which its ML-DSA key
// signed; the operator's certificate for that key names its peer id. So the broker's database
// alone cannot add a NATS user: each one is admitted only when its accepted request verifies,
// the certificate stored with it chains to the anchors (and no CRL revokes it), is for the
// request's keys, and is the peer's current certificate (a reinstall under the same id replaces
// the user). `milkywaysrvd nats-authorization --config` merges these with the users file.
import { type Certificate, type Crl, parseCertificates } from '../../keys/index.ts';
import { checkEnrollmentRequest, checkIssuedCertificate } from '../wire/index.ts';
import type { EnrollmentRow, PeerRow } from './broker-db.ts';
import { BrokerError } from './broker-error.ts';
import type { NatsUsers } from './nats-users.ts';

export interface EnrolledNatsUsers {
  /** Peer id → its nkey public key, from verified accepted requests. */
  peers: Record<string, string>;
  /** Accepted requests carrying an nkey that were left out, and why (`peerId`: the certificate's). */
  skipped: Array<{ requestId: string; peerId: string; reason: string }>;
}

/** The peer id the stored certificate names (unverified, for the message), else the one asked for. */
function issuedId(e: EnrollmentRow): string {
  try {
    return parseCertificates(e.certificate ?? '')[0]?.peerId ?? e.peerId;
  } catch {
    return e.peerId;
  }
}

export function enrolledNatsUsers(
  enrollments: readonly EnrollmentRow[],
  peers: readonly PeerRow[],
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[] },
): EnrolledNatsUsers {
  const current = new Map(peers.map((p) => [p.peerId, p.fingerprint]));
  const out: EnrolledNatsUsers = { peers: {}, skipped: [] };
  for (const e of enrollments) {
    if (e.state !== 'accepted' || e.certificate === null) continue;
    const natsKey = (e.request as { payload?: { natsKey?: unknown } } | null)?.payload?.natsKey;
    if (natsKey === undefined) continue;
    try {
      // Checked at the time it was made, as `enrollment-accept` did: acceptance may be old.
      const req = checkEnrollmentRequest(e.request, new Date(e.created));
      const leaf = checkIssuedCertificate(req, parseCertificates(e.certificate), {
        anchors: o.anchors,
        ...(o.crls === undefined ? {} : { crls: o.crls }),
      });
      const peerId = leaf.peerId as string;
      if (current.get(peerId) !== leaf.fingerprint)
        throw new BrokerError('E_CONFIG', `${peerId} holds another certificate now`);
      out.peers[peerId] = req.payload.natsKey as string;
    } catch (err) {
      out.skipped.push({ requestId: e.requestId, peerId: issuedId(e), reason: (err as Error).message });
    }
  }
  return out;
}

/** The users file with the enrolled peers added; a peer in both with another key is refused. */
export function withEnrolled(users: NatsUsers, enrolled: EnrolledNatsUsers): NatsUsers {
  for (const [peerId, key] of Object.entries(enrolled.peers)) {
    const given = users.peers[peerId];
    if (given !== undefined && given !== key)
      throw new BrokerError(
        'E_CONFIG',
        `NATS users: ${peerId} has nkey ${given} in the users file and ${key} in its accepted enrollment; remove one`,
      );
  }
  return { ...users, peers: { ...users.peers, ...enrolled.peers } };
}
