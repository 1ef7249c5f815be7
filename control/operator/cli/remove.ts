// `mway remove --group G LAYER`: stops the layer's services and removes it.
import { defineCommand } from 'citty';
import { runJob, targetArgs } from './shared.ts';

export default defineCommand({
  args: { ...targetArgs, layer: { type: 'positional', required: true, description: 'Layer name' } },
  run: ({ args }) => runJob(args, 'layer.remove', { layer: args.layer }),
});
