// Small checks that return what they checked (noble's `abytes` style), used before
// trusting any byte or integer that came from outside.

export function isBytes(a: unknown): a is Uint8Array {
  return a instanceof Uint8Array;
}

/** Throws TypeError unless `value` is a Uint8Array (of `length`, when given). */
export function abytes(value: unknown, length?: number, label = 'value'): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`Expected ${label} to be a Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`Expected ${label} of ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** Throws RangeError unless `value` is a safe integer in [min, max]. */
export function aint(value: number, min: number, max: number, label = 'value'): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected ${label} to be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** A DataView over exactly `u8`'s bytes, honouring byteOffset. */
export function view(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function toHex(u8: Uint8Array): string {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
}

export function fromHex(hex: string, label = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
    throw new SyntaxError(`Cannot decode ${label}: not hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
