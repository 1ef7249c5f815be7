// `mway-layer import-oci ARCHIVE|REF --key K --cert C -o FILE.mwl`: an OCI layout tarball, a
// `docker save` archive or an image reference skopeo fetches (docker://, oci:, oci-archive:,
// docker-archive:; pinned by @sha256:…) becomes a signed layer with its provenance;
// dropped entries and unmapped settings listed.
import { defineCommand } from 'citty';
import { commonArgs, createProgress, progressArgs, output } from '../../common/index.ts';
import { LayerError } from '../layer-error.ts';
import { importOci } from '../oci-import.ts';
import { epochArg, keyArgs, loadSigner } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    ...progressArgs,
    ...keyArgs,
    archive: {
      type: 'positional',
      required: true,
      description:
        'OCI layout tar or docker save tar (optionally gzip/zstd), or an image reference: docker://HOST/REPO:TAG or @sha256:…, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG]',
    },
    'tls-verify': {
      type: 'boolean',
      default: true,
      description:
        'Verify the registry’s TLS certificate for docker:// (--no-tls-verify for a plain-HTTP registry, as skopeo --tls-verify=false)',
    },
    out: { type: 'string', alias: 'o', description: 'Output .mwl file' },
    name: { type: 'string', description: 'Layer name (default: from the image reference)' },
    version: {
      type: 'string',
      description: 'Layer version (default: the tag when it is a semantic version)',
    },
    ref: { type: 'string', description: 'Image to take from an archive holding several' },
    arch: {
      type: 'string',
      description:
        'The layer’s architecture, x86_64 or aarch64: a multi-arch index gives its image, another is refused (default: this machine’s from an index, a single image as built)',
    },
    'writable-root': {
      type: 'string',
      default: 'ephemeral',
      description:
        'The service’s writable root: ephemeral (fresh at each start, as podman run --rm) or persistent (kept on the data partition across restarts and boots, as a container’s rootfs)',
    },
    'source-date-epoch': {
      type: 'string',
      description: 'Timestamp for every file (default: env SOURCE_DATE_EPOCH, else 0)',
    },
  },
  async run({ args }) {
    if (args.out === undefined) throw new LayerError('E_USAGE', 'Give -o FILE.mwl');
    const writableRoot = args['writable-root'];
    if (writableRoot !== 'ephemeral' && writableRoot !== 'persistent')
      throw new LayerError(
        'E_USAGE',
        `--writable-root: ${JSON.stringify(writableRoot)} is not ephemeral or persistent`,
      );
    const arch = args.arch;
    if (arch !== undefined && arch !== 'x86_64' && arch !== 'aarch64')
      throw new LayerError('E_USAGE', `--arch: ${JSON.stringify(arch)} is not x86_64 or aarch64`);
    const signer = await loadSigner(args.key, args.cert);
    const epoch = epochArg(args['source-date-epoch']);
    const r = await importOci({
      archive: args.archive,
      tlsVerify: args['tls-verify'],
      ...signer,
      out: args.out,
      progress: createProgress({ json: args.json, quiet: args.quiet }),
      ...(args.name === undefined ? {} : { name: args.name }),
      ...(args.version === undefined ? {} : { version: args.version }),
      ...(args.ref === undefined ? {} : { ref: args.ref }),
      ...(arch === undefined ? {} : { architecture: arch }),
      writableRoot,
      ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
    });
    output(
      args.json,
      {
        path: r.path,
        format: r.format,
        name: r.manifest.name,
        version: r.manifest.version,
        architecture: r.manifest.architecture,
        imageLayers: r.imageLayers,
        service: r.manifest.services[0] ?? null,
        rootHash: r.manifest.payload.verity.rootHash,
        source: r.manifest.source ?? null,
        dropped: r.dropped,
        unmapped: r.unmapped,
      },
      () =>
        [
          `imported ${r.format} image (${r.imageLayers} layers) → ${r.path}: ${r.manifest.name} ${r.manifest.version} (${r.manifest.architecture})`,
          ...(r.manifest.source === undefined
            ? []
            : [`source: ${r.manifest.source.ref} (${r.manifest.source.digest})`]),
          ...r.dropped.map((d) => `dropped: layer ${d.layer} ${d.path}: ${d.reason}`),
          ...r.unmapped.map((u) => `not mapped: ${u}`),
        ].join('\n'),
    );
  },
});
