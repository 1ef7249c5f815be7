// `mway-image build [SPEC] -o DIR`: image spec → OUT/disk.img (doc/how-to-build-an-image.md).
// With no SPEC it builds examples/default. Progress on a terminal, a summary at the end.
import { defineCommand } from 'citty';
import {
  commonArgs,
  createProgress,
  progressArgs,
  formatBytes,
  output,
  UsageError,
} from '../../common/index.ts';
import { buildImage } from '../build-image.ts';
import { ImageError } from '../image-error.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../image-spec.ts';

export function epochFromEnv(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env === undefined || env === '') return 0;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 32 - 1)
    throw new ImageError(
      'E_SPEC_EPOCH',
      `SOURCE_DATE_EPOCH=${env} is not a whole number of seconds from 0 to 2^32-1`,
    );
  return n;
}

const buildArgs = {
  ...commonArgs,
  ...progressArgs,
  spec: {
    type: 'positional',
    required: false,
    description: 'Image spec (JSON); default examples/default/image.json',
  },
  out: {
    type: 'string',
    alias: 'o',
    description: 'Output folder (disk.img, build.json, generated keys/); required unless --print-spec',
  },
  'print-spec': {
    type: 'boolean',
    description: 'Print the resolved spec (defaults filled, paths absolute) as JSON and build nothing',
  },
  keys: {
    type: 'string',
    description:
      'Keys folder to use instead of the spec’s (vendor-root.crt, vendor.key/.crt, user-root.crt, user.key/.crt)',
  },
} as const;

export default defineCommand({
  args: buildArgs,
  async run({ args }) {
    const spec = await loadImageSpec(args.spec ?? DEFAULT_SPEC);
    if (args['print-spec'] === true) {
      // Without `source`, the output is itself a valid spec (absolute paths, every default).
      const { source: _, ...resolved } = spec;
      // With --json, the envelope around it like every verb's result.
      output(args.json, resolved, () => JSON.stringify(resolved, null, 2));
      return 0;
    }
    if (args.out === undefined || args.out === '') {
      throw new UsageError('Missing required flag --out', 'missing-argument', '--out');
    }
    const progress = createProgress({ json: args.json, quiet: args.quiet });
    const r = await buildImage({
      spec,
      outDir: args.out,
      ...(args.keys === undefined ? {} : { keysDir: args.keys }),
      sourceDateEpoch: epochFromEnv(),
      progress,
    });
    output(args.json, r, () =>
      [
        `Built ${r.disk} (${formatBytes(r.sizeBytes)}) in ${(r.durationMs / 1000).toFixed(1)} s: ${r.name} ${r.version}, kernel ${r.kernel}`,
        `CoreOS root hash ${r.coreos.rootHash} (signed by ${r.coreos.signer})`,
        `Certificates root hash ${r.certificates.rootHash}`,
        ...r.certificates.anchors.map((a) => `  anchor ${a}`),
        `Secure config signed by ${r.secureConfig.signer}`,
        ...r.layers.map((l) => `Layer ${l.name} ${l.version} signed by ${l.signers.join(', ')}`),
        'Partitions:',
        ...r.partitions.map(
          (p) =>
            `  ${String(p.index).padStart(2)}  ${p.name.padEnd(28)} ${p.role.padEnd(22)} ${formatBytes(p.sizeBytes).padStart(10)}  ${p.filesystem ?? '-'}`,
        ),
        `Keys: ${r.keysDir}${r.keysGenerated ? ' (generated development keys: keep them private)' : ''}`,
      ].join('\n'),
    );
    return 0;
  },
});
