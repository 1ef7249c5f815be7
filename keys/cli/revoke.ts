// `mway keys revoke`: create or extend an X.509 CRL with a certificate's serial.
import { lstat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { crlPem, crlSignedBy, issueCrl, readCrls } from '../crl.ts';
import { KeysError, keysError } from '../errors.ts';
import { writeFileAtomic } from '../key-file.ts';
import { loadCert, loadKey } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    'issuer-key': { type: 'string', required: true, description: 'Issuer private key' },
    'issuer-cert': { type: 'string', required: true, description: 'Issuer certificate' },
    cert: { type: 'string', required: true, description: 'Certificate to revoke' },
    crl: { type: 'string', required: true, description: 'CRL file to create or extend' },
  },
  async run({ args }) {
    const issuerKey = await loadKey(args['issuer-key']);
    // A peer issuer's file holds it and the root above it: the CRL carries that chain.
    const issuerChain = await loadCert(args['issuer-cert']);
    const issuerCert = issuerChain[0];
    const cert = (await loadCert(args.cert))[0];
    if (issuerCert === undefined || cert === undefined)
      throw new KeysError('E_CERT_MALFORMED', 'No certificate found');
    // Existence by lstat: reading a FIFO to find out would block (readCrls refuses one by type).
    const exists = await lstat(args.crl).then(
      () => true,
      () => false,
    );
    const previous = exists ? (await readCrls(args.crl))[0] : undefined;
    if (previous !== undefined && !crlSignedBy(previous, issuerCert)) {
      throw new KeysError(
        'E_CRL_SIGNATURE',
        `Existing CRL ${args.crl} is not signed by ${issuerCert.subject}`,
      );
    }
    const crl = await issueCrl({ issuerKey, issuerCert, issuerChain, serials: [cert.serial], previous });
    await writeFileAtomic(args.crl, crlPem(crl), 0o644, { what: 'CRL', error: keysError });
    output(
      args.json,
      { crl: args.crl, revoked: crl.serials },
      () => `revoked ${cert.subject} (serial ${cert.serial}); ${args.crl} lists ${crl.serials.length}`,
    );
    return 0;
  },
});
