// GUID/UUID text <-> bytes, in both byte orders: RFC 4122 (big-endian, as the
// verity superblock stores it) and the mixed-endian layout of UEFI (GPT, spec 2.10 App. A).
import { FormatError } from './format-error.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws E_BAD_UUID unless `text` is a canonical 8-4-4-4-12 hex UUID; returns it lower-cased. */
export function parseUuid(text: string, label = 'UUID'): string {
  if (!UUID_RE.test(text))
    throw new FormatError('E_BAD_UUID', `Cannot parse ${label}: ${JSON.stringify(text)} is not a UUID`);
  return text.toLowerCase();
}

/** RFC 4122 byte order: the hex digits in text order. */
export function uuidToBytes(text: string, label = 'UUID'): Uint8Array {
  return new Uint8Array(Buffer.from(parseUuid(text, label).replaceAll('-', ''), 'hex'));
}

export function uuidFromBytes(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`Expected 16 UUID bytes, got ${b.length}`);
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** UEFI GUID byte order: the first three fields little-endian. */
export function guidToBytes(text: string, label = 'GUID'): Uint8Array {
  const b = uuidToBytes(text, label);
  return swapGuid(b);
}

export function guidFromBytes(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`Expected 16 GUID bytes, got ${b.length}`);
  return uuidFromBytes(swapGuid(b));
}

function swapGuid(b: Uint8Array): Uint8Array {
  const o = new Uint8Array(b);
  o.set([b[3] ?? 0, b[2] ?? 0, b[1] ?? 0, b[0] ?? 0, b[5] ?? 0, b[4] ?? 0, b[7] ?? 0, b[6] ?? 0], 0);
  return o;
}

/** Marks 16 bytes (RFC order) as a version-4, variant-1 UUID, as systemd does for derived ones. */
export function asUuidV4(b: Uint8Array): Uint8Array {
  const o = b.slice(0, 16);
  o[6] = ((o[6] ?? 0) & 0x0f) | 0x40;
  o[8] = ((o[8] ?? 0) & 0x3f) | 0x80;
  return o;
}
