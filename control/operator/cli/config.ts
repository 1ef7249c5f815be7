// `mway config init`: writes ~/.config/mway/config.json (broker address, fleet, operator key
// and certificate, trust anchors, CRLs). `mway config show` prints it.
import { defineCommand } from 'citty';
import { commonArgs, output, values } from '../../../common/index.ts';
import { readCertificates } from '../../../keys/index.ts';
import { configDir, readOperatorConfig, writeOperatorConfig } from '../operator-client.ts';
import { OperatorError } from '../operator-error.ts';

const init = defineCommand({
  meta: { name: 'init', description: 'Write the operator config (broker, fleet, key, certificate, anchors)' },
  args: {
    ...commonArgs,
    broker: { type: 'string', required: true, description: 'Broker address host:port' },
    fleet: { type: 'string', default: 'default', description: 'Fleet name' },
    key: { type: 'string', required: true, description: 'Operator private key (NAME.key)' },
    cert: { type: 'string', required: true, description: 'Operator certificate chain (NAME.crt)' },
    anchor: {
      type: 'string',
      required: true,
      repeatable: true,
      description: 'User root certificate (repeatable)',
    },
    crl: { type: 'string', repeatable: true, description: 'CRL file or directory (repeatable)' },
    'broker-fingerprint': { type: 'string', description: 'Pin the broker certificate (sha256 hex)' },
  },
  async run({ args }) {
    const chain = await readCertificates(args.cert);
    if (chain[0]?.role !== 'operator') {
      throw new OperatorError(
        'E_CONFIG',
        `${args.cert} is not an operator certificate (role ${chain[0]?.role ?? 'none'})`,
      );
    }
    const file = await writeOperatorConfig({
      broker: args.broker,
      fleet: args.fleet,
      key: args.key,
      cert: args.cert,
      anchors: values(args.anchor),
      crls: values(args.crl),
      ...(args['broker-fingerprint'] === undefined ? {} : { brokerFingerprint: args['broker-fingerprint'] }),
    });
    output(args.json, { file }, () => `wrote ${file}`);
    return 0;
  },
});

const show = defineCommand({
  meta: { name: 'show', description: 'Print the operator config' },
  args: { ...commonArgs },
  async run({ args }) {
    const cfg = await readOperatorConfig();
    output(args.json, { dir: configDir(), ...cfg }, () =>
      [
        `config   ${configDir()}/config.json`,
        `broker   ${cfg.broker}`,
        `fleet    ${cfg.fleet}`,
        `cert     ${cfg.cert}`,
        `anchors  ${cfg.anchors.join(', ')}`,
      ].join('\n'),
    );
    return 0;
  },
});

export default defineCommand({
  subCommands: { init, show },
});
