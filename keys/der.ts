// Strict DER framing (X.690 §10.1): definite lengths in their shortest form, every
// constructed value exactly filled by its children, one top-level value and no byte after
// it. Certificates and CRLs are identified by the SHA-256 of their DER, so an encoding with
// a trailing byte or a longer length form would give one certificate many fingerprints.
// Iterative (an explicit stack), so attacker-chosen nesting depth costs no recursion.
import { KeysError } from './errors.ts';
import type { KeysCode } from './keys-codes.ts';

/** Deepest nesting accepted; X.509 certificates and CRLs of this profile need fewer than 12. */
const MAX_DEPTH = 32;

interface Tlv {
  /** Offset of the first content byte. */
  start: number;
  /** Offset just after the last content byte. */
  end: number;
  constructed: boolean;
}

function readTlv(der: Uint8Array, at: number, limit: number, fail: (m: string) => never): Tlv {
  if (at >= limit) fail(`value at byte ${at} is cut off`);
  const tag = der[at] as number;
  let p = at + 1;
  if ((tag & 0x1f) === 0x1f) {
    // High tag number: base-128, no leading 0x80 byte, at most 4 bytes here.
    if (p < limit && der[p] === 0x80) fail(`tag at byte ${at} is not in its shortest form`);
    let n = 0;
    for (;;) {
      if (p >= limit) fail(`tag at byte ${at} is cut off`);
      const b = der[p++] as number;
      if (++n > 4) fail(`tag at byte ${at} is too long`);
      if ((b & 0x80) === 0) break;
    }
  }
  if (p >= limit) fail(`length at byte ${p} is cut off`);
  const first = der[p++] as number;
  let length: number;
  if (first < 0x80) length = first;
  else if (first === 0x80) fail(`indefinite length at byte ${p - 1} (BER, not DER)`);
  else {
    const octets = first & 0x7f;
    if (octets > 4) fail(`length at byte ${p - 1} has ${octets} octets`);
    if (p + octets > limit) fail(`length at byte ${p - 1} is cut off`);
    if (der[p] === 0) fail(`length at byte ${p - 1} has a leading zero octet`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[p++] as number);
    if (length < 0x80) fail(`length ${length} at byte ${p - octets - 1} is not in its short form`);
  }
  if (p + length > limit) fail(`value at byte ${at} runs ${p + length - limit} bytes past its container`);
  return { start: p, end: p + length, constructed: (tag & 0x20) !== 0 };
}

/** Throws KeysError `code` unless `der` is exactly one strictly framed DER value. */
export function assertStrictDer(der: Uint8Array, code: KeysCode, what: string): void {
  const fail = (m: string): never => {
    throw new KeysError(code, `${what} is not strict DER: ${m}`);
  };
  if (der.length === 0) fail('empty');
  const top = readTlv(der, 0, der.length, fail);
  if (top.end !== der.length) fail(`${der.length - top.end} bytes after the end of the value`);
  // Each stack entry: the next child offset and the end of the constructed value holding it.
  const stack: { at: number; end: number }[] = [];
  if (top.constructed) stack.push({ at: top.start, end: top.end });
  while (stack.length > 0) {
    const cur = stack[stack.length - 1] as { at: number; end: number };
    if (cur.at === cur.end) {
      stack.pop();
      continue;
    }
    const child = readTlv(der, cur.at, cur.end, fail);
    cur.at = child.end;
    if (child.constructed) {
      if (stack.length >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
      stack.push({ at: child.start, end: child.end });
    }
  }
}
