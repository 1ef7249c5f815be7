// `mway keys secure-boot --kind user|vendor --name NAME --out DIR`: the RSA Secure Boot keys
// beside an ML-DSA identity (user: PK, KEK, db + owner GUID; vendor: the stage-2 kexec key).
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { KeysError } from '../errors.ts';
import { newSecureBootKeys } from '../secure-boot-keys.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    kind: { type: 'string', required: true, description: 'user | vendor' },
    name: { type: 'string', required: true, description: 'Name in the certificates’ subjects' },
    out: { type: 'string', required: true, description: 'Keys folder (beside user.key / vendor.key)' },
    days: { type: 'string', description: 'Validity in days (default 3650)' },
  },
  async run({ args }) {
    if (args.kind !== 'user' && args.kind !== 'vendor')
      throw new KeysError('E_ROLE_UNKNOWN', `--kind ${JSON.stringify(args.kind)}: expected user or vendor`);
    const days = args.days === undefined ? undefined : Number(args.days);
    if (days !== undefined && !Number.isInteger(days))
      throw new KeysError('E_DAYS_INVALID', `--days ${args.days} is not a whole number`);
    const made = await newSecureBootKeys({
      dir: args.out,
      kind: args.kind,
      name: args.name,
      ...(days === undefined ? {} : { days }),
    });
    output(args.json, made, () =>
      made.map((m) => `wrote ${m.role.padEnd(5)} ${m.key}, ${m.cert} (CN=${m.subject})`).join('\n'),
    );
    return 0;
  },
});
