// `mway peers autosign --issuer-key K --issuer-cert C [--watch [--interval S]] [--days N]`:
// accepts the pending enrollment requests that carry a valid enrollment token and rejects the
// ones whose token is expired, used up, forged or out of scope (control/operator/
// enroll-autosign.ts). One pass by default (exit 1 when a request was refused or failed);
// `--watch` keeps passing until SIGINT/SIGTERM. `--json`: one JSON line per decision.
import { defineCommand } from 'citty';
import '../../../keys/cli/index.ts';
import { commonArgs, jsonLine } from '../../../common/index.ts';
import { readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { assertPeerIssuer } from '../enroll-accept.ts';
import { type AutosignDecision, autosignPass } from '../enroll-autosign.ts';
import { configDir } from '../operator-client.ts';
import { usageError } from '../operator-error.ts';
import { withClient } from './shared.ts';

function line(d: AutosignDecision): string {
  if (d.outcome === 'accepted')
    return `accepted ${d.peerId} (request ${d.requestId}, token ${d.token ?? '?'}${d.groups?.length ? `, groups ${d.groups.join(',')}` : ''})`;
  return `${d.outcome === 'refused' ? 'refused' : 'not accepted yet'} ${d.peerId} (request ${d.requestId}): ${d.code ?? ''}: ${d.message ?? ''}`;
}

export default defineCommand({
  meta: { name: 'autosign', description: 'Accept enrollment requests that carry a valid enrollment token' },
  args: {
    ...commonArgs,
    'issuer-key': {
      type: 'string',
      required: true,
      description: 'Peer issuer private key (mway keys new --role peer-issuer)',
    },
    'issuer-cert': { type: 'string', required: true, description: 'Peer issuer certificate' },
    days: { type: 'string', numeric: 'integer', description: 'Certificate validity in days (default 365)' },
    watch: { type: 'boolean', description: 'Keep accepting until SIGINT/SIGTERM' },
    interval: {
      type: 'string',
      numeric: 'number',
      description: 'Seconds between passes with --watch (default 2)',
    },
  },
  async run({ args }) {
    const interval = args.interval === undefined ? 2 : Number(args.interval);
    if (!(interval >= 0.1 && interval <= 3600)) throw usageError('--interval must be 0.1..3600 seconds');
    const issuerCert = (await readCertificates(args['issuer-cert']))[0];
    if (issuerCert === undefined) throw usageError(`${args['issuer-cert']} holds no certificate`);
    assertPeerIssuer(issuerCert, args['issuer-cert']);
    const issuerKey = await readPrivateKey(args['issuer-key']);
    const print = (d: AutosignDecision) =>
      args.json === true ? jsonLine(d) : process.stdout.write(`${line(d)}\n`);
    return withClient(async (c) => {
      const pass = () =>
        autosignPass(c, {
          issuerKey,
          issuerCert,
          ledgerDir: configDir(),
          ...(args.days === undefined ? {} : { days: Number(args.days) }),
        });
      if (args.watch !== true) {
        const ds = await pass();
        for (const d of ds) print(d);
        return ds.every((d) => d.outcome === 'accepted') ? 0 : 1;
      }
      let stop = false;
      let wake: () => void = () => {};
      const onSignal = () => {
        stop = true;
        wake();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // A request that is not accepted yet (a missing group) is said once, not every pass.
      const said = new Set<string>();
      while (!stop) {
        for (const d of await pass()) {
          const key = `${d.requestId} ${d.outcome} ${d.code ?? ''}`;
          if (!said.has(key)) print(d);
          said.add(key);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, interval * 1000);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
      return 0;
    });
  },
});
