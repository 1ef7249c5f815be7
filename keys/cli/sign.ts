// `mway keys sign --key K --cert C --type TYPE FILE -o SIG`: a detached signature file, or with
// --envelope an envelope that carries FILE's JSON as its payload (a secure config, --type config).
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { canonicalJson } from '../canonical.ts';
import { serialize, signDetached, signEnvelope } from '../envelope.ts';
import { KeysError, keysError } from '../errors.ts';
import { writeFileAtomic } from '../key-file.ts';
import { ENVELOPE_TYPES, type EnvelopeType } from '../types.ts';
import { loadCert, loadKey, readInput } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    file: { type: 'positional', required: true, description: 'File to sign' },
    key: { type: 'string', required: true, description: 'Signer private key' },
    cert: { type: 'string', required: true, description: 'Signer certificate (chain)' },
    type: { type: 'string', default: 'file', description: `Envelope type: ${ENVELOPE_TYPES.join(', ')}` },
    output: { type: 'string', alias: 'o', required: true, description: 'Signature output file' },
    envelope: {
      type: 'boolean',
      description:
        'Write an envelope holding FILE (JSON) as its payload instead of a detached signature: what the agent reads as its secure config (--type config)',
    },
  },
  async run({ args }) {
    if (!(ENVELOPE_TYPES as readonly string[]).includes(args.type)) {
      throw new KeysError(
        'E_ENVELOPE_TYPE',
        `Unknown type ${args.type} (known: ${ENVELOPE_TYPES.join(', ')})`,
      );
    }
    const type = args.type as EnvelopeType;
    if (args.envelope === true) {
      const text = Buffer.from(await readInput(args.file, 'file to sign')).toString('utf8');
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch (e) {
        throw new KeysError(
          'E_ENVELOPE_MALFORMED',
          `Cannot sign ${args.file} as an envelope: not JSON: ${(e as Error).message}`,
          {
            path: args.file,
          },
        );
      }
      const env = signEnvelope({
        type,
        payload,
        key: await loadKey(args.key),
        chain: await loadCert(args.cert),
      });
      await writeFileAtomic(args.output, serialize(env), 0o644, { what: 'envelope file', error: keysError });
      output(
        args.json,
        { envelope: args.output, type },
        () => `signed ${args.file} as a ${type} envelope -> ${args.output}`,
      );
      return 0;
    }
    const signature = signDetached({
      type,
      data: await readInput(args.file, 'file to sign'),
      key: await loadKey(args.key),
      chain: await loadCert(args.cert),
    });
    await writeFileAtomic(args.output, canonicalJson({ v: 1, type, signature }), 0o644, {
      what: 'signature file',
      error: keysError,
    });
    output(
      args.json,
      { signature: args.output, type, signer: signature.signer },
      () => `signed ${args.file} as ${type} -> ${args.output}`,
    );
    return 0;
  },
});
