// `mway keys crl`: create an issuer's CRL (empty), or renew an existing one with a fresh
// thisUpdate/nextUpdate and the same serials, so brokers and peers have a list to hold from
// day one and revocations (`mway keys revoke`) only ever extend it.
import { lstat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { crlPem, crlSignedBy, issueCrl, readCrls } from '../crl.ts';
import { KeysError } from '../errors.ts';
import { writeFileAtomic } from '../key-file.ts';
import { loadCert, loadKey } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    'issuer-key': { type: 'string', required: true, description: 'Issuer private key' },
    'issuer-cert': { type: 'string', required: true, description: 'Issuer certificate' },
    crl: { type: 'string', required: true, description: 'CRL file to create or renew' },
    days: { type: 'string', description: 'Days until nextUpdate (default 30)' },
  },
  async run({ args }) {
    const days = args.days === undefined ? 30 : Number(args.days);
    if (!Number.isInteger(days) || days < 1 || days > 3650)
      throw new KeysError('E_USAGE', `--days must be 1..3650, got ${JSON.stringify(args.days)}`);
    const issuerKey = await loadKey(args['issuer-key']);
    // A peer issuer's file holds it and the root above it: the CRL carries that chain.
    const issuerChain = await loadCert(args['issuer-cert']);
    const issuerCert = issuerChain[0];
    if (issuerCert === undefined) throw new KeysError('E_CERT_MALFORMED', 'No certificate found');
    // Existence by lstat: reading a FIFO to find out would block (readCrls refuses one by type).
    const exists = await lstat(args.crl).then(
      () => true,
      () => false,
    );
    const previous = exists ? (await readCrls(args.crl))[0] : undefined;
    if (previous !== undefined && !crlSignedBy(previous, issuerCert))
      throw new KeysError(
        'E_CRL_SIGNATURE',
        `Existing CRL ${args.crl} is not signed by ${issuerCert.subject}`,
      );
    const crl = await issueCrl({ issuerKey, issuerCert, issuerChain, serials: [], previous, days });
    await writeFileAtomic(args.crl, crlPem(crl), 0o644);
    output(
      args.json,
      { crl: args.crl, revoked: crl.serials, thisUpdate: crl.thisUpdate.toISOString() },
      () =>
        `${exists ? 'renewed' : 'created'} ${args.crl} (${crl.serials.length} revoked, next update ${crl.nextUpdate?.toISOString() ?? '-'})`,
    );
    return 0;
  },
});
