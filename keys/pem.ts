// The one PEM reader of keys/ (RFC 7468, strict): every block's BEGIN and END lines carry the
// same expected label, nothing but whitespace lies between or around blocks, the body is
// canonical base64, and a text that yields no block is an error. A lax reader that skips what
// it does not understand turns a damaged armor into a silently dropped certificate or CRL
// (the next certificate of a bundle verified in its place; a revocation list ignored).
import { KeysError } from './errors.ts';
import type { KeysCode } from './keys-codes.ts';

const LINE = /^-----(BEGIN|END) ([A-Z0-9 ]+)-----$/;
const B64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** True when `bytes` starts (after whitespace) like PEM text rather than DER. */
export function looksPem(bytes: Uint8Array): boolean {
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)
  )
    i++;
  // DER of a certificate or CRL starts with 0x30 (SEQUENCE); PEM with '-'.
  return bytes[i] === 0x2d;
}

/**
 * The DER bodies of the `label` blocks in `text`, in order. Throws `code` (E_CERT_MALFORMED,
 * E_CRL_MALFORMED) naming the line for: a line that is neither armor, base64 nor blank; an
 * armor line of another label; END without BEGIN, BEGIN inside a block, a block without END;
 * a body that is not canonical base64 or is empty; no block at all.
 */
export function decodePem(text: string, label: string, code: KeysCode, what: string): Uint8Array[] {
  return decodePemBlocks(text, [label], code, what).map((b) => b.der);
}

/**
 * decodePem for a text that may mix labels (a CRL followed by its issuer's certificates): the
 * same strictness, each block of one of `labels`, BEGIN and END of a block the same label. At
 * least one block of `labels[0]` must be present.
 */
export function decodePemBlocks(
  text: string,
  labels: readonly string[],
  code: KeysCode,
  what: string,
): Array<{ label: string; der: Uint8Array }> {
  const out: Array<{ label: string; der: Uint8Array }> = [];
  const lines = text.split('\n');
  const first = labels[0] as string;
  const expected = labels.join(' or ');
  let body: string[] | undefined;
  let open = first;
  let begunAt = 0;
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).replace(/\r$/, '').replace(/[ \t]+$/, '');
    const where = `${what} line ${n + 1}`;
    const armor = LINE.exec(line);
    if (armor !== null) {
      const label = armor[2] as string;
      if (!labels.includes(label) || (body !== undefined && armor[1] === 'END' && label !== open)) {
        throw new KeysError(
          code,
          `${where}: PEM label ${JSON.stringify(label)}, expected ${body === undefined ? expected : open}`,
        );
      }
      if (armor[1] === 'BEGIN') {
        if (body !== undefined) throw new KeysError(code, `${where}: BEGIN ${label} inside a block`);
        body = [];
        open = label;
        begunAt = n + 1;
        continue;
      }
      if (body === undefined) throw new KeysError(code, `${where}: END ${label} without BEGIN`);
      out.push({ label, der: canonicalBase64(body.join(''), code, `${what} block at line ${begunAt}`) });
      body = undefined;
      continue;
    }
    if (body === undefined) {
      if (line.trim() !== '') {
        throw new KeysError(code, `${where}: text outside a PEM ${expected} block (damaged armor?)`);
      }
      continue;
    }
    if (!B64_LINE.test(line)) throw new KeysError(code, `${where}: not base64`);
    body.push(line);
  }
  if (body !== undefined) {
    throw new KeysError(code, `${what}: PEM ${open} block at line ${begunAt} has no END line (truncated?)`);
  }
  if (!out.some((b) => b.label === first)) throw new KeysError(code, `${what}: no PEM ${first} block`);
  return out;
}

function canonicalBase64(s: string, code: KeysCode, where: string): Uint8Array {
  if (s.length === 0 || s.length % 4 !== 0 || !B64_LINE.test(s)) {
    throw new KeysError(code, `${where}: body is not base64 (${s.length} characters)`);
  }
  const b = Buffer.from(s, 'base64');
  // Non-zero padding bits decode to the same bytes: refuse them, so one body has one text.
  if (b.toString('base64') !== s) throw new KeysError(code, `${where}: body is not canonical base64`);
  return new Uint8Array(b);
}
