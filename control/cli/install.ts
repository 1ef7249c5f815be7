// `mway install --group G FILE.mwl`: streams the signed layer in chunks with its digest; each
// peer checks the digest against the signed command and the layer's own signature.
import { defineCommand } from 'citty';
import { layerArgs } from '../operator-client.ts';
import { runJob, targetArgs } from './shared.ts';

export default defineCommand({
  meta: { name: 'install', description: 'Install a signed layer on a group or peers' },
  args: { ...targetArgs, file: { type: 'positional', required: true, description: 'Layer file (.mwl)' } },
  async run({ args }) {
    return runJob(args, 'layer.install', await layerArgs(args.file));
  },
});
