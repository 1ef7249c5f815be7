// `mway-layer pack DIR --key K --cert C -o FILE.mwl`: build, hash and sign a layer.
import { defineCommand } from 'citty';
import { commonArgs, createProgress, progressArgs, output } from '../../common/index.ts';
import { LayerError } from '../layer-error.ts';
import { packLayer } from '../pack.ts';
import { epochArg, keyArgs, loadSigner } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    ...progressArgs,
    ...keyArgs,
    dir: { type: 'positional', required: true, description: 'Layer source directory' },
    out: { type: 'string', alias: 'o', description: 'Output .mwl file' },
    'source-date-epoch': {
      type: 'string',
      description: 'Timestamp for every file (default: env SOURCE_DATE_EPOCH, else 0)',
    },
  },
  async run({ args }) {
    if (args.out === undefined) throw new LayerError('E_USAGE', 'Give -o FILE.mwl');
    const signer = await loadSigner(args.key, args.cert);
    const epoch = epochArg(args['source-date-epoch']);
    const progress = createProgress({ json: args.json, quiet: args.quiet });
    const r = await packLayer({
      dir: args.dir,
      ...signer,
      out: args.out,
      progress,
      ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
    });
    output(
      args.json,
      {
        path: r.path,
        name: r.manifest.name,
        version: r.manifest.version,
        size: r.size,
        rootHash: r.manifest.payload.verity.rootHash,
        payloadOffset: r.payloadOffset,
        payloadSize: r.payloadSize,
        verityOffset: r.verityOffset,
        veritySize: r.veritySize,
      },
      () =>
        `packed ${r.manifest.name} ${r.manifest.version} → ${r.path} (${r.size} bytes, verity root ${r.manifest.payload.verity.rootHash})`,
    );
  },
});
