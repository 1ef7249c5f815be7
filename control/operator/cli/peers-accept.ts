// `mway peers accept ID --issuer-key K --issuer-cert C`: issues a peer certificate for exactly
// the key in the (self-signed) enrollment request and hands it to the broker, which checks it
// before it lets the peer in. Compare the fingerprint out of band before accepting.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import { publicKeyFromRaw } from '../../../keys/index.ts';
import {
  certificatePem,
  issueCertificate,
  readCertificates,
  readPrivateKey,
  type SigningKey,
} from '../../../keys/index.ts';
import { checkEnrollmentRequest, ControlError } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import { findEnrollmentRequest, withClient } from './shared.ts';

export default defineCommand({
  meta: { name: 'accept', description: 'Issue the certificate of a pending peer and let it in' },
  args: {
    ...commonArgs,
    id: { type: 'positional', required: true, description: 'Request id or peer id' },
    'issuer-key': { type: 'string', required: true, description: 'User root private key' },
    'issuer-cert': { type: 'string', required: true, description: 'User root certificate' },
    days: { type: 'string', description: 'Validity in days (default 365)' },
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
      const issuerCert = (await readCertificates(args['issuer-cert']))[0];
      if (issuerCert === undefined) throw usageError(`${args['issuer-cert']} holds no certificate`);
      const subjectKey = {
        algorithm: req.payload.algorithm,
        publicKey: publicKeyFromRaw(req.payload.algorithm, req.publicKey),
      } as SigningKey;
      const cert = await issueCertificate({
        role: 'peer',
        name: req.payload.name,
        subjectKey,
        issuerKey: await readPrivateKey(args['issuer-key']),
        issuerCert,
        peerId: req.payload.peerId,
        kemPublicKey: req.kemPublicKey,
        ...(args.days === undefined ? {} : { days: Number(args.days) }),
      });
      const pem = certificatePem(cert.der) + certificatePem(issuerCert.der);
      await c.client.request('enrollment-accept', { requestId: req.requestId, certificate: pem });
      output(
        args.json,
        { requestId: req.requestId, peerId: req.payload.peerId, fingerprint: req.fingerprint },
        () => `accepted ${req.payload.peerId} (key ${req.fingerprint})`,
      );
      return 0;
    }),
});
