// `mway keys verify-sig FILE SIG --trust ANCHOR…`: exit 0 when valid, 1 with the failing check's code.
import { defineCommand } from 'citty';
import { commonArgs, output, repeated } from '../../common/index.ts';
import { assertCanonical, verifyDetached } from '../envelope.ts';
import { KeysError } from '../errors.ts';
import { ENVELOPE_TYPES, type EnvelopeType } from '../types.ts';
import { loadAnchors, loadCrls, readInput } from './shared.ts';

export default defineCommand({
  meta: { name: 'verify-sig', description: 'Verify a detached signature made by `mway keys sign`' },
  args: {
    ...commonArgs,
    file: { type: 'positional', required: true, description: 'Signed file' },
    sig: { type: 'positional', required: true, description: 'Signature file' },
    trust: { type: 'string', description: 'Trust anchor certificate (repeatable)' },
    crl: { type: 'string', description: 'CRL file (repeatable)' },
    type: { type: 'string', description: 'Required type (default: the one in SIG)' },
  },
  async run({ args, rawArgs }) {
    const anchors = await loadAnchors(repeated(rawArgs, 'trust'));
    const crls = await loadCrls(repeated(rawArgs, 'crl'));
    // Files that cannot be read are errors of the command (exit 1, `mway: CODE`), not invalid signatures.
    const sigText = await readInput(args.sig, 'signature file', 1024 * 1024);
    const data = await readInput(args.file, 'signed file');
    try {
      let doc: { v?: unknown; type?: unknown; signature?: unknown };
      try {
        doc = JSON.parse(sigText.toString('utf8')) as typeof doc;
      } catch (e) {
        throw new KeysError(
          'E_ENVELOPE_MALFORMED',
          `Signature file ${args.sig} is not JSON: ${(e as Error).message}`,
        );
      }
      if (
        typeof doc !== 'object' ||
        doc === null ||
        doc.v !== 1 ||
        typeof doc.signature !== 'object' ||
        Object.keys(doc).some((k) => !['v', 'type', 'signature'].includes(k))
      ) {
        throw new KeysError('E_ENVELOPE_MALFORMED', `Signature file ${args.sig} is not {v:1,type,signature}`);
      }
      const type = (args.type ?? doc.type) as EnvelopeType;
      if (!(ENVELOPE_TYPES as readonly string[]).includes(type))
        throw new KeysError('E_ENVELOPE_TYPE', `Unknown type ${String(type)}`);
      if (doc.type !== type)
        throw new KeysError('E_ENVELOPE_TYPE', `Signature is of type ${String(doc.type)}, expected ${type}`);
      // `mway keys sign` writes canonical JSON; any other spelling is bytes no signature covers.
      assertCanonical(new Uint8Array(sigText), doc, `Signature file ${args.sig}`);
      const signer = verifyDetached(data, doc.signature as never, {
        type,
        anchors,
        crls,
      });
      output(
        args.json,
        { valid: true, type, signer: signer.subject, role: signer.role, fingerprint: signer.fingerprint },
        () => `valid: ${type} signed by ${signer.subject} (${signer.role})`,
      );
      return 0;
    } catch (e) {
      if (!(e instanceof KeysError)) throw e;
      output(
        args.json,
        { valid: false, code: e.code, message: e.message },
        () => `invalid: ${e.code}: ${e.message}`,
      );
      return 1;
    }
  },
});
