// `mway crl push FILE --group G|--peer P|--target EXPR`: delivers a CRL to peers in a signed
// `crl.install` command. The CRL's own signature (by the user root, or by the peer issuer with
// its chain to the root) is its authority: it is checked here against our anchors before
// anything is sent, and again by every peer, which keeps it in its writable state and refuses
// one older than the CRL it has in force.
import { defineCommand } from 'citty';
import { checkCrls, crlPem, readCrls } from '../../../keys/index.ts';
import { usageError } from '../operator-error.ts';
import { readOperatorConfig } from '../operator-client.ts';
import { runJob, targetArgs } from './shared.ts';
import { OperatorClient } from '../operator-client.ts';

const push = defineCommand({
  meta: { name: 'push', description: 'Install a CRL on a group or peers (signed crl.install command)' },
  args: {
    ...targetArgs,
    file: {
      type: 'positional',
      required: true,
      description: 'CRL file (PEM or DER), e.g. from mway keys revoke',
    },
  },
  async run({ args }) {
    const crls = await readCrls(args.file);
    const crl = crls[0];
    if (crl === undefined || crls.length !== 1) throw usageError(`${args.file} must hold exactly one CRL`);
    // Refuse a CRL the peers would refuse, before signing anything.
    const cfg = await readOperatorConfig();
    const { anchors } = await OperatorClient.trust(cfg);
    checkCrls([crl], anchors);
    // A peer issuer's CRL goes as its PEM file, the issuer's chain after it (the peer checks it
    // through that chain, as we just did); a root's as its DER.
    const bytes = crl.issuerChain === undefined ? crl.der : Buffer.from(crlPem(crl));
    return runJob(args, 'crl.install', { crl: Buffer.from(bytes).toString('base64') });
  },
});

export default defineCommand({
  subCommands: { push },
});
