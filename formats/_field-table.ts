// A fixed binary layout declared once, as a table of fields (name, offset, size, type, spec
// citation), from which both the encoder and the decoder are derived, so the two can never
// disagree on an offset (noble-post-quantum's splitCoder idea). Used by the GPT header and
// entry, the verity superblock, the newc cpio header and the ustar header.
//
// The table only moves bytes. What a value must be (magic, versions, checksums, ranges) is
// checked by each format's decoder, with its own error codes, before it trusts the record.
import { guidFromBytes, guidToBytes } from './guid.ts';

export type FieldType =
  /** Little-endian unsigned integers; u64 is a bigint. */
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  /** Raw bytes; shorter values are zero-padded. */
  | 'bytes'
  /** Text (latin1), NUL-padded; decodes up to the first NUL. */
  | 'text'
  /** UTF-16LE text, NUL-padded (GPT partition names). */
  | 'utf16'
  /** A GUID in UEFI's mixed-endian byte order (UEFI 2.10 Appendix A), as a lower-case string. */
  | 'guid'
  /** A number as exactly `size` ASCII hex digits (cpio newc). */
  | 'hex'
  /** A number as ASCII octal digits then NUL, space-padded (ustar). */
  | 'octal'
  /** Bytes the format reserves: written as zeros, not part of the record. */
  | 'reserved';

export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType;
  /** Where the layout is defined (spec section or the reference implementation's struct). */
  readonly spec: string;
  /** A constant the encoder writes when the record does not give one (magic, version). */
  readonly value?: string | number | bigint;
  /** Octal only: digits before the NUL (default size − 1; GNU tar's checksum uses 6). */
  readonly digits?: number;
}

type ValueOf<T extends FieldType> = T extends 'u64'
  ? bigint
  : T extends 'u8' | 'u16' | 'u32' | 'hex' | 'octal'
    ? number
    : T extends 'bytes'
      ? Uint8Array
      : string;

type Valued<F extends Field> = F extends { type: 'reserved' } ? never : F;

/** The decoded record: one property per non-reserved field. */
export type FieldRecord<Fs extends readonly Field[]> = {
  [F in Valued<Fs[number]> as F['name']]: ValueOf<F['type']>;
};

/** What the encoder needs: every non-reserved field, except those with a constant `value`. */
export type FieldInput<Fs extends readonly Field[]> = {
  [F in Valued<Fs[number]> as F extends { value: unknown } ? never : F['name']]: ValueOf<F['type']>;
} & {
  [F in Valued<Fs[number]> as F extends { value: unknown } ? F['name'] : never]?: ValueOf<F['type']>;
};

/** Raised by `decode` when a text-coded number is not one; the format turns it into its own coded error. */
export type BadField = (field: Field, raw: string) => Error;

export interface FieldTable<Fs extends readonly Field[]> {
  readonly name: string;
  /** Bytes the layout covers. */
  readonly size: number;
  readonly fields: Fs;
  /** The field called `name` (its offset and size), for checksums computed over the bytes. */
  field(name: Fs[number]['name']): Field;
  /** The raw bytes of field `name` in `bytes`. */
  raw(bytes: Uint8Array, name: Fs[number]['name']): Uint8Array;
  /** A fresh `size`-byte buffer holding `record`. */
  encode(record: FieldInput<Fs>): Uint8Array;
  /** Writes one field's value into `bytes` (a checksum computed after the rest). */
  write(bytes: Uint8Array, name: Fs[number]['name'], value: string | number | bigint | Uint8Array): void;
  /** Reads one field of `bytes` (a checksum checked before the rest is decoded). */
  read(bytes: Uint8Array, name: Fs[number]['name'], bad?: BadField): string | number | bigint | Uint8Array;
  /** Reads every field of `bytes` (at least `size` long; callers check the length first, with their own code). */
  decode(bytes: Uint8Array, bad?: BadField): FieldRecord<Fs>;
  /** Names of the reserved fields that are not all zero. */
  nonZeroReserved(bytes: Uint8Array): string[];
}

const latin1 = new TextDecoder('latin1');

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

function untilNul(b: Uint8Array): Uint8Array {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

function defaultBad(f: Field, raw: string): Error {
  return new SyntaxError(`Cannot decode ${f.name}: ${JSON.stringify(raw)} is not a number`);
}

function writeField(out: Uint8Array, f: Field, v: string | number | bigint | Uint8Array): void {
  const at = out.subarray(f.offset, f.offset + f.size);
  const dv = view(at);
  const tooLong = (n: number) =>
    new RangeError(`Cannot encode ${f.name}: ${n} bytes do not fit in ${f.size}`);
  switch (f.type) {
    case 'u8':
      dv.setUint8(0, Number(v));
      return;
    case 'u16':
      dv.setUint16(0, Number(v), true);
      return;
    case 'u32':
      dv.setUint32(0, Number(v), true);
      return;
    case 'u64':
      dv.setBigUint64(0, BigInt(v as number | bigint), true);
      return;
    case 'bytes':
    case 'text': {
      const b = typeof v === 'string' ? ascii(v) : (v as Uint8Array);
      if (b.length > f.size) throw tooLong(b.length);
      at.fill(0);
      at.set(b, 0);
      return;
    }
    case 'utf16': {
      const b = Buffer.from(String(v), 'utf16le');
      if (b.length > f.size) throw tooLong(b.length);
      at.fill(0);
      at.set(b, 0);
      return;
    }
    case 'guid':
      at.set(guidToBytes(String(v), f.name), 0);
      return;
    case 'hex': {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0 || n >= 16 ** f.size)
        throw new RangeError(`Cannot encode ${f.name}: ${n} does not fit in ${f.size} hex digits`);
      at.set(ascii(n.toString(16).padStart(f.size, '0')), 0);
      return;
    }
    case 'octal': {
      const n = Number(v);
      const digits = f.digits ?? f.size - 1;
      if (!Number.isSafeInteger(n) || n < 0 || n >= 8 ** digits)
        throw new RangeError(`Cannot encode ${f.name}: ${n} does not fit in ${digits} octal digits`);
      at.fill(0x20);
      at.set(ascii(`${n.toString(8).padStart(digits, '0')}\0`), 0);
      return;
    }
    case 'reserved':
      at.fill(0);
      return;
  }
}

function readField(b: Uint8Array, f: Field, bad: BadField): string | number | bigint | Uint8Array {
  const at = b.subarray(f.offset, f.offset + f.size);
  const dv = view(at);
  switch (f.type) {
    case 'u8':
      return dv.getUint8(0);
    case 'u16':
      return dv.getUint16(0, true);
    case 'u32':
      return dv.getUint32(0, true);
    case 'u64':
      return dv.getBigUint64(0, true);
    case 'bytes':
    case 'reserved':
      return at.slice();
    case 'text':
      return latin1.decode(untilNul(at));
    case 'utf16': {
      const s = Buffer.from(at).toString('utf16le');
      const nul = s.indexOf('\0');
      return nul < 0 ? s : s.slice(0, nul);
    }
    case 'guid':
      return guidFromBytes(at);
    case 'hex': {
      const s = latin1.decode(at);
      if (!/^[0-9a-fA-F]+$/.test(s) || s.length !== f.size) throw bad(f, s);
      return Number.parseInt(s, 16);
    }
    case 'octal': {
      const s = latin1.decode(untilNul(at)).trim();
      if (!/^[0-7]+$/.test(s) || s.length > f.size) throw bad(f, s);
      return Number.parseInt(s, 8);
    }
  }
}

/** Builds the coder of a layout; throws at load time if fields overlap or leave the layout. */
export function fieldTable<const Fs extends readonly Field[]>(
  name: string,
  size: number,
  fields: Fs,
): FieldTable<Fs> {
  const byName = new Map<string, Field>();
  let end = 0;
  for (const f of [...fields].sort((a, b) => a.offset - b.offset)) {
    if (f.offset < end || f.offset + f.size > size || f.size < 1 || byName.has(f.name))
      throw new RangeError(`Field table ${name}: field ${f.name} overlaps, repeats or leaves the layout`);
    byName.set(f.name, f);
    end = f.offset + f.size;
  }
  const get = (n: string): Field => {
    const f = byName.get(n);
    if (f === undefined) throw new RangeError(`Field table ${name} has no field ${n}`);
    return f;
  };
  return {
    name,
    size,
    fields,
    field: get,
    raw: (bytes, n) => {
      const f = get(n);
      return bytes.subarray(f.offset, f.offset + f.size);
    },
    encode(record) {
      const out = new Uint8Array(size);
      const r = record as Record<string, string | number | bigint | Uint8Array | undefined>;
      for (const f of fields) {
        if (f.type === 'reserved') continue;
        const v = r[f.name] ?? f.value;
        if (v === undefined) throw new TypeError(`Cannot encode ${name}: ${f.name} is missing`);
        writeField(out, f, v);
      }
      return out;
    },
    write: (bytes, n, v) => writeField(bytes, get(n), v),
    read: (bytes, n, bad = defaultBad) => readField(bytes, get(n), bad),
    decode(bytes, bad = defaultBad) {
      if (bytes.length < size)
        throw new RangeError(`Cannot decode ${name}: ${bytes.length} bytes, expected ${size}`);
      const out: Record<string, unknown> = {};
      for (const f of fields) if (f.type !== 'reserved') out[f.name] = readField(bytes, f, bad);
      return out as FieldRecord<Fs>;
    },
    nonZeroReserved: (bytes) =>
      fields
        .filter(
          (f) => f.type === 'reserved' && bytes.subarray(f.offset, f.offset + f.size).some((b) => b !== 0),
        )
        .map((f) => f.name),
  };
}
