// `mway peers autosign`: Salt's autosign done with our PKI. Every pending enrollment request
// that carries an enrollment token is checked here, by the holder of the issuer key, never by
// the broker: the request's proof of possession, the token's operator signature, scope, fleet
// and expiry (control/wire/enroll-token.ts), and its uses in our own ledger (token-ledger.ts).
// A good one is accepted with the token's groups and labels; a bad one is rejected with the
// code that says why (its machine gets E_ENROLL_REJECTED). Requests without a token wait for
// `mway peers accept` as before.
import type { Certificate, SigningKey } from '../../keys/index.ts';
import { checkEnrollmentRequest, verifyEnrollToken } from '../wire/index.ts';
import { acceptEnrollment } from './enroll-accept.ts';
import type { OperatorClient } from './operator-client.ts';
import { spendTokenUse } from './token-ledger.ts';

export interface AutosignDecision {
  requestId: string;
  peerId: string;
  /** accepted; refused (rejected at the broker, with why); failed (left pending: retried next pass). */
  outcome: 'accepted' | 'refused' | 'failed';
  code?: string;
  message?: string;
  token?: string;
  groups?: string[];
}

/** Codes that mean the request or its token can never be accepted: the request is rejected. */
const FINAL = /^E_ENROLL_(TOKEN_\w+|INVALID|SIGNATURE)$/;

export async function autosignPass(
  c: OperatorClient,
  o: { issuerKey: SigningKey; issuerCert: Certificate; days?: number; ledgerDir: string; now?: Date },
): Promise<AutosignDecision[]> {
  const rows = ((await c.client.request('enrollment-list')).requests as Array<Record<string, unknown>>) ?? [];
  const out: AutosignDecision[] = [];
  const known = new Set((await c.groups()).map((g) => g.group));
  for (const row of rows) {
    const request = row.request as { payload?: { token?: unknown } } | undefined;
    if (row.state !== 'pending' || request?.payload?.token === undefined) continue;
    const requestId = String(row.requestId);
    const d: AutosignDecision = { requestId, peerId: String(row.peerId), outcome: 'failed' };
    try {
      const req = checkEnrollmentRequest(request, o.now);
      const token = verifyEnrollToken(req.payload.token, {
        anchors: c.anchors,
        crls: c.crls,
        fleet: c.cfg.fleet,
        ...(o.now === undefined ? {} : { at: o.now }),
      }).payload;
      d.token = token.id;
      d.groups = token.groups;
      const missing = token.groups.filter((g) => !known.has(g));
      if (missing.length > 0) {
        // Not the machine's fault: it stays pending until the group exists.
        d.code = 'E_GROUP_UNKNOWN';
        d.message = `Token ${token.id} names group(s) ${missing.join(', ')} that do not exist (mway group create)`;
        out.push(d);
        continue;
      }
      await spendTokenUse(o.ledgerDir, token.id, req.requestId, token.uses);
      await acceptEnrollment(c, req, {
        issuerKey: o.issuerKey,
        issuerCert: o.issuerCert,
        peerId: req.payload.peerId,
        labels: { ...req.payload.labels, ...token.labels },
        groups: token.groups,
        ...(o.days === undefined ? {} : { days: o.days }),
      });
      d.outcome = 'accepted';
    } catch (e) {
      d.code = (e as { code?: string }).code ?? 'E_INTERNAL';
      d.message = (e as Error).message;
      if (FINAL.test(d.code)) {
        await c.client.request('enrollment-reject', { requestId });
        d.outcome = 'refused';
      }
    }
    out.push(d);
  }
  return out;
}
