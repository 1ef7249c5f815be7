// `mway-layer sign FILE.mwl --key K --cert C`: add a (counter)signature.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { signLayer } from '../sign.ts';
import { keyArgs, loadSigner } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    ...keyArgs,
    file: { type: 'positional', required: true, description: 'Layer .mwl' },
    out: { type: 'string', alias: 'o', description: 'Write here instead of replacing FILE' },
  },
  async run({ args }) {
    const signer = await loadSigner(args.key, args.cert);
    const r = await signLayer(args.file, { ...signer, ...(args.out === undefined ? {} : { out: args.out }) });
    output(
      args.json,
      { path: r.path, signatures: r.signatures, signer: signer.chain[0]?.subject },
      () => `signed ${r.path} (${r.signatures} signatures)`,
    );
  },
});
