// `mway install --group G FILE.mwl`: sends the signed layer with its digest — inline up to
// 2 MiB, above that as signed 2 MiB `layer.chunk` commands followed by the install; each peer
// checks the bytes against the signed digest and the layer's own signature.
import { defineCommand } from 'citty';
import { createProgress, openRegularFile, progressArgs } from '../../../common/index.ts';
import { MAX_INLINE_LAYER_BYTES } from '../../wire/index.ts';
import { operatorError, usageError } from '../operator-error.ts';
import { installLargeLayer, layerArgs } from '../operator-client.ts';
import { finish, jsonMode, runJob, targetArgs, targetOf, withClient } from './shared.ts';

export default defineCommand({
  args: {
    ...targetArgs,
    ...progressArgs,
    file: { type: 'positional', required: true, description: 'Layer file (.mwl)' },
  },
  async run({ args }) {
    // By type before any read: a FIFO would block the read forever, a directory is a mistake.
    const { fh, size } = await openRegularFile(args.file, { what: 'layer', error: operatorError });
    await fh.close();
    if (size <= MAX_INLINE_LAYER_BYTES) return runJob(args, 'layer.install', await layerArgs(args.file));
    if (args.async === true)
      throw usageError(`--async: ${args.file} is sent in pieces, each must arrive first`);
    const target = targetOf(args);
    const json = jsonMode(args);
    const progress = createProgress({ json: args.json, quiet: args.quiet });
    return withClient(async (c) => {
      progress.step(`sending ${args.file} in pieces`);
      const r = await installLargeLayer(
        c,
        args.file,
        {
          target,
          ...(args.batch === undefined ? {} : { batch: args.batch }),
          ...(args['max-fail'] === undefined ? {} : { maxFail: args['max-fail'] }),
          timeoutMs: (args.timeout === undefined ? 300 : Number(args.timeout)) * 1000,
          dryRun: args['dry-run'] === true,
        },
        (done, total) => {
          progress.bytes(done, total);
          if (done === total) progress.step('waiting for the peers to verify and install');
        },
      );
      progress.done();
      return finish(r, json);
    });
  },
});
