// `mway-layer import-compose FILE --key K --cert C -o DIR`: each service of a compose file
// becomes a signed layer `<project>-<service>.mwl` in DIR, in the layer group `<project>`,
// imported from its image with the compose settings over it; what a layer holds otherwise is
// listed, what it cannot hold is refused naming the compose key path (doc/layer-format.md).
import { defineCommand } from 'citty';
import { commonArgs, createProgress, output } from '../../common/index.ts';
import { importCompose } from '../compose-import.ts';
import { LayerError } from '../layer-error.ts';
import { epochArg, keyArgs, loadSigner } from './shared.ts';

export default defineCommand({
  meta: {
    name: 'import-compose',
    description: 'Turn each service of a compose file into a signed layer of one layer group',
  },
  args: {
    ...commonArgs,
    ...keyArgs,
    file: {
      type: 'positional',
      required: true,
      description: 'The compose file (docker-compose.yml, compose.yaml)',
    },
    out: { type: 'string', alias: 'o', description: 'Directory the layers are written to' },
    name: {
      type: 'string',
      description: 'Project name when the file has no name: (default: the file’s directory name)',
    },
    version: {
      type: 'string',
      description: 'Version of every layer (default: each image’s tag when semver)',
    },
    'tls-verify': {
      type: 'boolean',
      default: true,
      description:
        'Verify registries’ TLS certificates for docker:// images (--no-tls-verify for plain HTTP)',
    },
    'source-date-epoch': {
      type: 'string',
      description: 'Timestamp for every file (default: env SOURCE_DATE_EPOCH, else 0)',
    },
  },
  async run({ args }) {
    if (args.out === undefined) throw new LayerError('E_USAGE', 'Give -o DIR');
    const signer = await loadSigner(args.key, args.cert);
    const epoch = epochArg(args['source-date-epoch']);
    const r = await importCompose({
      file: args.file,
      ...signer,
      outDir: args.out,
      tlsVerify: args['tls-verify'],
      progress: createProgress({ json: args.json }),
      ...(args.name === undefined ? {} : { name: args.name }),
      ...(args.version === undefined ? {} : { version: args.version }),
      ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
    });
    output(
      args.json,
      {
        project: r.project,
        layers: r.layers.map((l) => ({
          service: l.service,
          layer: l.layer,
          path: l.path,
          version: l.result.manifest.version,
          rootHash: l.result.manifest.payload.verity.rootHash,
          manifestService: l.result.manifest.services[0] ?? null,
          dropped: l.result.dropped,
          unmapped: l.result.unmapped,
        })),
        notes: r.notes,
      },
      () =>
        [
          `imported compose project ${r.project}: ${r.layers.length} services → layer group ${r.project}`,
          ...r.layers.flatMap((l) => [
            `  ${l.service} → ${l.path} (${l.layer} ${l.result.manifest.version})`,
            ...l.result.unmapped.map((u) => `    not mapped from the image: ${u}`),
            ...l.result.dropped.map((d) => `    dropped: layer ${d.layer} ${d.path}: ${d.reason}`),
          ]),
          ...r.notes.map((n) => `not mapped: ${n}`),
        ].join('\n'),
    );
  },
});
