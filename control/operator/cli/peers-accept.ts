// `mway peers accept ID --issuer-key K --issuer-cert C`: issues a peer certificate for exactly
// the key in the (self-signed) enrollment request and hands it to the broker, which checks it
// before it lets the peer in. Compare the fingerprint out of band before accepting.
import { defineCommand } from 'citty';
// Issuing uses WebCrypto ML-DSA, which Node marks experimental: the keys CLI drops exactly that
// warning from stderr, and so does this command (the import installs the filter).
import '../../../keys/cli/index.ts';
import { commonArgs, output } from '../../../common/index.ts';
import { readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { checkEnrollmentRequest, ControlError, isId } from '../../wire/index.ts';
import { acceptEnrollment, assertPeerIssuer } from '../enroll-accept.ts';
import { usageError } from '../operator-error.ts';
import { findEnrollmentRequest, withClient } from './shared.ts';

export default defineCommand({
  meta: { name: 'accept', description: 'Issue the certificate of a pending peer and let it in' },
  args: {
    ...commonArgs,
    id: { type: 'positional', required: true, description: 'Request id or peer id' },
    'issuer-key': {
      type: 'string',
      required: true,
      description: 'Peer issuer private key (mway keys new --role peer-issuer)',
    },
    'issuer-cert': { type: 'string', required: true, description: 'Peer issuer certificate' },
    days: { type: 'string', numeric: 'integer', description: 'Validity in days (default 365)' },
    'peer-id': { type: 'string', description: 'Peer id to certify (default: the one the machine asked for)' },
    label: { type: 'string', description: 'Labels K=V[,K=V…] (default: the ones the machine asked for)' },
    group: {
      type: 'string',
      alias: 'peer-group',
      description:
        'Groups G[,G…] to sign memberships of (delivered when it connects); --peer-group is the same',
    },
    replace: { type: 'boolean', description: 'Take over a peer id another certificate holds (a reinstall)' },
  },
  run: ({ args }) =>
    withClient(async (c) => {
      const row = await findEnrollmentRequest(c, args.id);
      if (row.request === undefined) {
        throw new ControlError(
          'E_ENROLL_UNKNOWN',
          `The broker did not return request ${args.id} itself; cannot issue a certificate`,
        );
      }
      const req = checkEnrollmentRequest(row.request);
      const peerId = args['peer-id'] ?? req.payload.peerId;
      if (!isId(peerId)) throw usageError(`--peer-id ${JSON.stringify(peerId)} is not an id`);
      const labels = args.label === undefined ? undefined : parseLabels(args.label);
      const groups = args.group === undefined ? [] : args.group.split(',').map((g) => g.trim());
      for (const g of groups)
        if (!isId(g)) throw usageError(`--group ${JSON.stringify(g)} is not a group name`);
      const known = new Set((await c.groups()).map((g) => g.group));
      const missing = groups.filter((g) => !known.has(g));
      if (missing.length > 0)
        throw usageError(`No group ${missing.join(', ')}; create it first (mway group create)`);
      const issuerCert = (await readCertificates(args['issuer-cert']))[0];
      if (issuerCert === undefined) throw usageError(`${args['issuer-cert']} holds no certificate`);
      assertPeerIssuer(issuerCert, args['issuer-cert']);
      await acceptEnrollment(c, req, {
        issuerKey: await readPrivateKey(args['issuer-key']),
        issuerCert,
        peerId,
        ...(labels === undefined ? {} : { labels }),
        groups,
        ...(args.days === undefined ? {} : { days: Number(args.days) }),
        ...(args.replace === true ? { replace: true } : {}),
      });
      output(
        args.json,
        {
          requestId: req.requestId,
          peerId,
          fingerprint: req.fingerprint,
          labels: labels ?? req.payload.labels,
          groups,
        },
        () =>
          [
            `accepted ${peerId} (key ${req.fingerprint})`,
            ...groups.map((g) => `membership of ${g} signed; ${peerId} applies it when it connects`),
          ].join('\n'),
      );
      return 0;
    }),
});

/** `K=V[,K=V…]` as a label object (keys are ids, values at most 256 characters). */
export function parseLabels(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    const k = part.slice(0, i).trim();
    const val = part.slice(i + 1).trim();
    if (i <= 0 || !isId(k) || val.length > 256)
      throw usageError(`--label ${JSON.stringify(part)} is not K=V`);
    out[k] = val;
  }
  return out;
}
