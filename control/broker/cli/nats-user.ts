// `milkywaysrvd nats-user --out FILE | --seed FILE [--key K --cert C --binding B [--enroll]]`: a
// NATS nkey user for the broker, a peer or an auditor (doc/nats.md, "Credentials and
// permissions"). With --out a new seed is written to FILE (mode 0600, refused if FILE exists: a
// seed is never overwritten); --seed names one that exists. The public key is printed. With
// --key and --cert, that certificate's key signs the binding of the nkey to it (`nats-user`
// envelope, nats-bindings.ts) into --binding: what `milkywaysrvd nats-authorization --bindings`
// derives the user from. --enroll: an operator binds the image's shared enrolling nkey instead.
import { stat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
import { passphraseFromEnv, readCertificates, readPrivateKey, serialize } from '../../../keys/index.ts';
import { newNkeySeed, nkeyPublicKey, readNkeySeed } from '../../wire/index.ts';
import { BrokerError } from '../broker-error.ts';
import { signNatsBinding } from '../nats-bindings.ts';

export default defineCommand({
  meta: { name: 'nats-user', description: 'Make a NATS nkey user: seed to --out, public key printed' },
  args: {
    ...commonArgs,
    out: { type: 'string', description: 'Seed file to write (mode 0600; must not exist)' },
    seed: { type: 'string', description: 'An existing seed file (instead of --out)' },
    key: {
      type: 'string',
      description: 'Private key whose certificate the nkey is bound to (MWAY_KEY_PASSPHRASE)',
    },
    cert: { type: 'string', description: 'Its certificate (a peer, broker or operator; chain after it)' },
    binding: { type: 'string', description: 'Write the signed binding here (with --key and --cert)' },
    enroll: {
      type: 'boolean',
      description: "Bind the image's shared enrolling nkey (an operator with the enroll action)",
    },
  },
  async run({ args }) {
    if ((args.out === undefined) === (args.seed === undefined))
      throw new BrokerError(
        'E_CONFIG',
        'nats-user: give either --out (a new seed) or --seed (an existing one)',
      );
    const signing = [args.key, args.cert, args.binding].filter((a) => a !== undefined).length;
    if (signing !== 0 && signing !== 3)
      throw new BrokerError('E_CONFIG', 'nats-user: --key, --cert and --binding go together');
    let seed: Uint8Array;
    if (args.seed !== undefined) seed = await readNkeySeed(args.seed);
    else {
      const out = args.out as string;
      const exists = await stat(out).then(
        () => true,
        () => false,
      );
      if (exists)
        throw new BrokerError('E_CONFIG', `Not writing NATS seed ${out}: the file exists`, { path: out });
      seed = await newNkeySeed();
      await writeFileAtomic(out, `${new TextDecoder().decode(seed)}\n`, 0o600);
    }
    const publicKey = await nkeyPublicKey(seed);
    if (args.binding !== undefined) {
      const key = await readPrivateKey(args.key as string, { passphrase: passphraseFromEnv() });
      const chain = await readCertificates(args.cert as string);
      const env = signNatsBinding({ nkey: publicKey, for: args.enroll ? 'enroll' : 'self', key, chain });
      await writeFileAtomic(args.binding, serialize(env), 0o644);
    }
    output(
      args.json,
      {
        seed: args.out ?? args.seed,
        publicKey,
        ...(args.binding === undefined ? {} : { binding: args.binding }),
      },
      () => publicKey,
    );
    return 0;
  },
});
