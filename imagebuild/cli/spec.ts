// `mway-image spec validate FILE`: checks an image spec without building (doc/image-spec.md).
// Exit 0 when it is valid; E_SPEC_INVALID (exit 1) names the file and the key path.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { loadImageSpec } from '../image-spec.ts';

const validateArgs = {
  ...commonArgs,
  file: { type: 'positional', required: true, description: 'Image spec (JSON)' },
} as const;

const validate = defineCommand({
  meta: { name: 'validate', description: 'Check FILE against the image spec schema, without building' },
  args: validateArgs,
  async run({ args }) {
    const spec = await loadImageSpec(args.file);
    output(args.json, { file: spec.source, name: spec.name, version: spec.version }, () => {
      return `${spec.source}: a valid image spec (${spec.name} ${spec.version})`;
    });
    return 0;
  },
});

export default defineCommand({
  subCommands: { validate },
});
