// `mway-layer verify FILE.mwl --trust ANCHOR… [--crl …]`: exit 0, or 1 with the failing check.
import { defineCommand } from 'citty';
import {
  commonArgs,
  createProgress,
  progressArgs,
  failed,
  isMilkyWayError,
  output,
} from '../../common/index.ts';
import { LayerError } from '../layer-error.ts';
import { verifyLayer } from '../verify.ts';
import { loadTrust, signerJson } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    ...progressArgs,
    file: { type: 'positional', required: true, description: 'Layer .mwl' },
    trust: { type: 'string', repeatable: true, description: 'Trust anchor certificate (repeatable)' },
    crl: { type: 'string', repeatable: true, description: 'CRL file (repeatable)' },
    at: { type: 'string', description: 'Check certificate validity at this ISO 8601 time' },
    quick: { type: 'boolean', description: 'Skip the payload/tree pass (the kernel checks blocks on read)' },
  },
  async run({ args }) {
    const { anchors, crls } = await loadTrust(args);
    if (anchors.length === 0) throw new LayerError('E_USAGE', 'Give at least one --trust ANCHOR');
    const at = args.at === undefined ? undefined : new Date(args.at);
    if (at !== undefined && Number.isNaN(at.getTime()))
      throw new LayerError('E_USAGE', `--at ${args.at} is not an ISO 8601 time`);
    try {
      const v = await verifyLayer(args.file, {
        anchors,
        crls,
        ...(at === undefined ? {} : { at }),
        verity: args.quick !== true,
        progress: createProgress({ json: args.json, quiet: args.quiet }),
      });
      output(
        args.json,
        {
          name: v.manifest.name,
          version: v.manifest.version,
          rootHash: v.manifest.payload.verity.rootHash,
          signers: v.signers.map(signerJson),
          payloadOffset: v.payloadOffset,
          payloadSize: v.payloadSize,
          verityOffset: v.verityOffset,
          veritySize: v.veritySize,
          fullCheck: args.quick !== true,
        },
        () =>
          `valid: ${v.manifest.name} ${v.manifest.version}, signed by ${v.signers.map((s) => `${s.subject} (${s.role})`).join(', ')}`,
      );
      return 0;
    } catch (e) {
      if (!isMilkyWayError(e)) throw e;
      return failed(args.json, e, () => `invalid: ${e.code}: ${e.message}`);
    }
  },
});
