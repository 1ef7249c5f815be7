// `mway keys new`: a new identity (key, certificate, and a KEM key for peers).
import { defineCommand } from 'citty';
import { commonArgs, list, output } from '../../common/index.ts';
import { assertAlgorithm } from '../algorithms.ts';
import { KeysError } from '../errors.ts';
import { newIdentity } from '../issue.ts';
import { passphraseFromEnv } from '../key-file.ts';
import { ROLES, type Role } from '../types.ts';
import { certHuman, certJson, loadCert, loadKey } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    role: { type: 'string', required: true, description: `Role: ${ROLES.join(', ')}` },
    name: { type: 'string', required: true, description: 'Subject name, also the file name' },
    out: { type: 'string', required: true, description: 'Output directory' },
    'issuer-key': { type: 'string', description: 'Issuer private key (not for roots)' },
    'issuer-cert': { type: 'string', description: 'Issuer certificate (not for roots)' },
    days: { type: 'string', numeric: 'integer', description: 'Validity in days' },
    groups: { type: 'string', description: 'Operator: allowed groups, comma-separated' },
    actions: { type: 'string', description: 'Operator: allowed actions, comma-separated' },
    'peer-id': { type: 'string', description: 'Peer id (default: NAME)' },
    dns: { type: 'string', description: 'DNS names, comma-separated' },
    alg: { type: 'string', description: 'ml-dsa-44 | ml-dsa-65 (default) | ml-dsa-87' },
  },
  async run({ args }) {
    if (!(ROLES as readonly string[]).includes(args.role)) {
      throw new KeysError('E_ROLE_UNKNOWN', `Unknown role ${args.role} (known: ${ROLES.join(', ')})`);
    }
    const days = args.days === undefined ? undefined : Number(args.days);
    if (days !== undefined && !Number.isInteger(days))
      throw new KeysError('E_DAYS_INVALID', `--days ${args.days} is not a whole number`);
    const hasIssuer = args['issuer-key'] !== undefined || args['issuer-cert'] !== undefined;
    if (hasIssuer && (args['issuer-key'] === undefined || args['issuer-cert'] === undefined)) {
      throw new KeysError('E_ISSUER_REQUIRED', 'Give both --issuer-key and --issuer-cert');
    }
    const r = await newIdentity({
      role: args.role as Role,
      name: args.name,
      outDir: args.out,
      issuerKey: args['issuer-key'] === undefined ? undefined : await loadKey(args['issuer-key']),
      issuerCert: args['issuer-cert'] === undefined ? undefined : (await loadCert(args['issuer-cert']))[0],
      days,
      groups: args.groups === undefined ? undefined : list(args.groups),
      actions: args.actions === undefined ? undefined : list(args.actions),
      peerId: args['peer-id'],
      dnsNames: list(args.dns),
      algorithm: args.alg === undefined ? undefined : assertAlgorithm(args.alg, '--alg'),
      passphrase: passphraseFromEnv(),
    });
    const files = {
      key: r.keyPath,
      cert: r.certPath,
      ...(r.kemKeyPath === undefined ? {} : { kemKey: r.kemKeyPath }),
    };
    output(args.json, { ...files, certificate: certJson(r.certificate) }, () =>
      [...Object.entries(files).map(([k, v]) => `wrote ${k.padEnd(6)} ${v}`), certHuman(r.certificate)].join(
        '\n',
      ),
    );
    return 0;
  },
});
