// `mway keys verify-sig FILE SIG --trust ANCHOR…`: exit 0 when valid, 1 with the failing check's code.
import { defineCommand } from 'citty';
import { commonArgs, failed, output, values } from '../../common/index.ts';
import { verifySignatureFile } from '../signature-file.ts';
import { KeysError } from '../errors.ts';
import type { EnvelopeType } from '../types.ts';
import { loadAnchors, loadCrls, readInput } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    file: { type: 'positional', required: true, description: 'Signed file' },
    sig: { type: 'positional', required: true, description: 'Signature file' },
    trust: { type: 'string', repeatable: true, description: 'Trust anchor certificate (repeatable)' },
    crl: { type: 'string', repeatable: true, description: 'CRL file (repeatable)' },
    type: { type: 'string', description: 'Required type (default: the one in SIG)' },
  },
  async run({ args }) {
    const anchors = await loadAnchors(values(args.trust));
    const crls = await loadCrls(values(args.crl));
    // Files that cannot be read are errors of the command (exit 1, `mway: CODE`), not invalid signatures.
    const sigText = await readInput(args.sig, 'signature file', 1024 * 1024);
    const data = await readInput(args.file, 'signed file');
    try {
      const { type, signer } = verifySignatureFile(data, new Uint8Array(sigText), {
        type: args.type as EnvelopeType | undefined,
        anchors,
        crls,
        where: `Signature file ${args.sig}`,
      });
      output(
        args.json,
        { type, signer: signer.subject, role: signer.role, fingerprint: signer.fingerprint },
        () => `valid: ${type} signed by ${signer.subject} (${signer.role})`,
      );
      return 0;
    } catch (e) {
      if (!(e instanceof KeysError)) throw e;
      return failed(args.json, e, () => `invalid: ${e.code}: ${e.message}`);
    }
  },
});
