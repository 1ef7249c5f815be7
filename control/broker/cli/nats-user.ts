// `milkywaysrvd nats-user --out FILE`: a new NATS nkey user for the broker, a peer or an auditor
// (doc/nats.md, "Credentials and permissions"). The seed is written to FILE (mode 0600, refused if
// FILE exists: a seed is never overwritten); the public key, printed, goes into the users file.
import { stat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
import { newNkeySeed, nkeyPublicKey } from '../../wire/index.ts';
import { BrokerError } from '../broker-error.ts';

export default defineCommand({
  meta: { name: 'nats-user', description: 'Make a NATS nkey user: seed to --out, public key printed' },
  args: {
    ...commonArgs,
    out: { type: 'string', required: true, description: 'Seed file to write (mode 0600; must not exist)' },
  },
  async run({ args }) {
    const exists = await stat(args.out).then(
      () => true,
      () => false,
    );
    if (exists)
      throw new BrokerError('E_CONFIG', `Not writing NATS seed ${args.out}: the file exists`, {
        path: args.out,
      });
    const seed = await newNkeySeed();
    await writeFileAtomic(args.out, `${new TextDecoder().decode(seed)}\n`, 0o600);
    const publicKey = await nkeyPublicKey(seed);
    output(args.json, { seed: args.out, publicKey }, () => publicKey);
    return 0;
  },
});
