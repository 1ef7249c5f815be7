// The detached signature file `mway keys sign` writes: canonical JSON {v:1, type, signature}
// (doc/envelope-format.md, "Detached"). Reading it is one function, so `mway keys verify-sig`
// and the mutation harness check exactly the same thing.
import { assertCanonical, type VerifyOptions, verifyDetached } from './envelope.ts';
import { KeysError } from './errors.ts';
import { ENVELOPE_TYPES, type Certificate, type EnvelopeType } from './types.ts';

export const MAX_SIGNATURE_FILE = 1024 * 1024;

/**
 * Verifies `data` against a signature file's bytes. `type` (when given) must be the file's;
 * otherwise the file's own type is used. Throws KeysError with the failing check's code.
 */
export function verifySignatureFile(
  data: Uint8Array,
  file: Uint8Array,
  o: Omit<VerifyOptions, 'type'> & { type?: EnvelopeType | undefined; where?: string },
): { type: EnvelopeType; signer: Certificate } {
  const where = o.where ?? 'Signature file';
  if (file.length > MAX_SIGNATURE_FILE)
    throw new KeysError('E_TOO_LARGE', `${where} is larger than ${MAX_SIGNATURE_FILE} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file));
  } catch (e) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where} is not UTF-8 JSON: ${(e as Error).message}`);
  }
  const d = doc as { v?: unknown; type?: unknown; signature?: unknown };
  if (
    typeof doc !== 'object' ||
    doc === null ||
    Array.isArray(doc) ||
    d.v !== 1 ||
    typeof d.signature !== 'object' ||
    Object.keys(doc).some((k) => !['v', 'type', 'signature'].includes(k))
  ) {
    throw new KeysError('E_ENVELOPE_MALFORMED', `${where} is not {v:1,type,signature}`);
  }
  const type = (o.type ?? d.type) as EnvelopeType;
  if (!(ENVELOPE_TYPES as readonly string[]).includes(type))
    throw new KeysError('E_ENVELOPE_TYPE', `Unknown type ${String(type)}`);
  if (d.type !== type)
    throw new KeysError('E_ENVELOPE_TYPE', `Signature is of type ${String(d.type)}, expected ${type}`);
  // `mway keys sign` writes canonical JSON; any other spelling is bytes no signature covers.
  assertCanonical(file, doc, where);
  const signer = verifyDetached(data, d.signature as never, { ...o, type });
  return { type, signer };
}
