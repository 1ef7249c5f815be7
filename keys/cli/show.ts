// `mway keys show CERT`: print a certificate (or bundle) of the MilkyWay profile.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { certHuman, certJson, loadCert } from './shared.ts';

export default defineCommand({
  args: { ...commonArgs, cert: { type: 'positional', required: true, description: 'Certificate file' } },
  async run({ args }) {
    const certs = await loadCert(args.cert);
    output(
      args.json,
      certs.length === 1 ? certJson(certs[0] as (typeof certs)[0]) : certs.map(certJson),
      () => certs.map(certHuman).join('\n\n'),
    );
    return 0;
  },
});
