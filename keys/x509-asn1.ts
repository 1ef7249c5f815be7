// Reading the parts of X.509 certificates and CRLs (RFC 5280 §4.1, §5.1) that MilkyWay uses,
// straight from asn1js's tree: the field list of a SEQUENCE checked by position and type, times,
// serial numbers, distinguished names as text and extensions. Parsing this way needs no
// @peculiar/x509 (with reflect-metadata and tsyringe about 0.085 s of CPU to load), which
// every `mway` verb that checks a chain used to pay; it is loaded only to issue (x509-lib.ts).
// Every reader throws `fail(message)`'s error: the caller picks the code.
import './asn1-oid-fix.ts';
import * as asn1js from 'asn1js';

export type Fail = (message: string) => never;

/** The children of a SEQUENCE, or fail naming `what`. */
export function children(v: asn1js.AsnType | undefined, what: string, fail: Fail): asn1js.AsnType[] {
  if (!(v instanceof asn1js.Sequence)) fail(`${what} is not a SEQUENCE`);
  return (v as asn1js.Sequence).valueBlock.value;
}

/** `v` as an instance of `type`, or fail naming `what`. */
export function expect<T extends asn1js.AsnType>(
  v: asn1js.AsnType | undefined,
  type: abstract new (...args: never[]) => T,
  what: string,
  fail: Fail,
): T {
  if (!(v instanceof type)) fail(`${what} is missing or of the wrong type`);
  return v as T;
}

/** The one value `der` encodes, nothing after it (strict DER framing of a whole certificate or CRL is der.ts's). */
export function decodeDer(der: Uint8Array, what: string, fail: Fail): asn1js.AsnType {
  const copy = new Uint8Array(der.byteLength);
  copy.set(der);
  const r = asn1js.fromBER(copy.buffer);
  if (r.offset === -1) fail(`${what} cannot be decoded: ${r.result.error}`);
  if (r.offset !== copy.length) fail(`${what} has ${copy.length - r.offset} bytes after its value`);
  return r.result;
}

/** A value's own DER bytes (tag, length and contents), as they were in the input. */
export function encoded(v: asn1js.AsnType): Uint8Array {
  return new Uint8Array(v.valueBeforeDecodeView);
}

/**
 * A serial number as lowercase hex, as @peculiar/x509 printed it (certificates and CRL entries
 * are matched by this text): the INTEGER's content octets, less the one zero octet that keeps a
 * value with its top bit set positive.
 */
export function integerHex(v: asn1js.AsnType | undefined, what: string, fail: Fail): string {
  const i = expect(v, asn1js.Integer, what, fail);
  let bytes = i.valueBlock.valueHexView;
  if (bytes.length === 0) fail(`${what} is an empty INTEGER`);
  if (bytes.length > 1 && bytes[0] === 0 && (bytes[1] as number) > 0x7f) bytes = bytes.subarray(1);
  return Buffer.from(bytes).toString('hex');
}

/** Time ::= UTCTime | GeneralizedTime (RFC 5280 §4.1.2.5). */
export function isTime(v: asn1js.AsnType | undefined): boolean {
  return v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime;
}

export function timeOf(v: asn1js.AsnType | undefined, what: string, fail: Fail): Date {
  if (!(v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime)) fail(`${what} is not a Time`);
  const d = (v as asn1js.UTCTime).toDate();
  if (Number.isNaN(d.getTime())) fail(`${what} is not a valid time`);
  return d;
}

/** OID text of an OBJECT IDENTIFIER (arcs above 2^53 in decimal, asn1-oid-fix.ts). */
export function oidOf(v: asn1js.AsnType | undefined, what: string, fail: Fail): string {
  return expect(v, asn1js.ObjectIdentifier, what, fail).valueBlock.toString();
}

/** The short names @peculiar/x509 prints for attribute types; others print as their OID. */
const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
  '2.5.4.42': 'G',
  '2.5.4.43': 'I',
  '2.5.4.4': 'SN',
  '2.5.4.12': 'T',
};

const STRING_TYPES = [
  asn1js.Utf8String,
  asn1js.PrintableString,
  asn1js.TeletexString,
  asn1js.UniversalString,
  asn1js.BmpString,
  asn1js.IA5String,
] as const;

interface Attribute {
  type: string;
  /** The text of a string value; undefined for any other type. */
  text: string | undefined;
  der: Uint8Array;
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue), RFC 5280 §4.1.2.4. */
function attributes(name: asn1js.AsnType | undefined, what: string, fail: Fail): Attribute[][] {
  return children(name, what, fail).map((rdn, i) => {
    if (!(rdn instanceof asn1js.Set)) fail(`${what} RDN ${i + 1} is not a SET`);
    const set = (rdn as asn1js.Set).valueBlock.value;
    if (set.length === 0) fail(`${what} RDN ${i + 1} is empty`);
    return set.map((atv) => {
      const [type, value, ...rest] = children(atv, `${what} attribute`, fail);
      if (value === undefined || rest.length > 0) fail(`${what} attribute is not (type, value)`);
      const str = STRING_TYPES.some((s) => value instanceof s);
      return {
        type: oidOf(type, `${what} attribute type`, fail),
        text: str ? (value as asn1js.Utf8String).valueBlock.value : undefined,
        der: encoded(value as asn1js.AsnType),
      };
    });
  });
}

/** RFC 4514 escaping, as @peculiar/x509 does it (the text its names printed as before). */
function escapeValue(s: string): string {
  return s
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/([ ]$)/, '\\$1')
    .replace(/[\r\n\t]/g, (c) => `\\${Buffer.from(c).toString('hex').toUpperCase()}`);
}

/**
 * A Name as text, RDNs joined by ", " and multi-valued ones by "+", as @peculiar/x509 printed
 * it: a CRL's issuer is compared and stored under this text (agent/remote/crl-store.ts names
 * its files by its digest), so it must not change with the parser.
 */
export function nameText(name: asn1js.AsnType | undefined, what: string, fail: Fail): string {
  return attributes(name, what, fail)
    .map((rdn) =>
      rdn
        .map((a) => {
          const type = ATTRIBUTE_NAMES[a.type] ?? a.type;
          const value = a.text === undefined ? `#${Buffer.from(a.der).toString('hex')}` : escapeValue(a.text);
          return `${type}=${value}`;
        })
        .join('+'),
    )
    .join(', ');
}

/** The first common name of a Name, else the whole name as text. */
export function commonName(name: asn1js.AsnType | undefined, what: string, fail: Fail): string {
  const cn = attributes(name, what, fail)
    .flat()
    .find((a) => a.type === '2.5.4.3');
  if (cn === undefined) return nameText(name, what, fail);
  return cn.text ?? Buffer.from(cn.der).toString('hex');
}

export interface Extension {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING's contents: the extension's own DER. */
  value: Uint8Array;
}

/**
 * Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1.2.9). A repeated extension
 * is refused ("a certificate MUST NOT include more than one instance of a particular
 * extension"): with two, which one a reader believes would be up to the reader.
 */
export function extensions(v: asn1js.AsnType, what: string, fail: Fail): Map<string, Extension> {
  const out = new Map<string, Extension>();
  // An empty list is SIZE (1..MAX)'s violation, but @peculiar/x509 writes one into each revoked
  // entry of the CRLs it issues (ours, since 2026): accepted, as it says nothing.
  for (const e of children(v, `${what} extensions`, fail)) {
    const fields = children(e, `${what} extension`, fail);
    const oid = oidOf(fields[0], `${what} extension id`, fail);
    let at = 1;
    let critical = false;
    if (fields[at] instanceof asn1js.Boolean) {
      critical = (fields[at] as asn1js.Boolean).valueBlock.value;
      at++;
    }
    const octets = expect(fields[at], asn1js.OctetString, `${what} extension ${oid} value`, fail);
    if (fields.length !== at + 1) fail(`${what} extension ${oid} has extra fields`);
    if (out.has(oid)) fail(`${what} repeats extension ${oid}`);
    out.set(oid, { oid, critical, value: new Uint8Array(octets.valueBlock.valueHexView) });
  }
  return out;
}

/** Whether `v` is a context-specific [n] tag (constructed or not). */
export function isContext(v: asn1js.AsnType | undefined, n: number): boolean {
  return v !== undefined && v.idBlock.tagClass === 3 && v.idBlock.tagNumber === n;
}

/** The one value inside an EXPLICIT [n] tag. */
export function explicitInner(v: asn1js.AsnType, what: string, fail: Fail): asn1js.AsnType {
  const inner = (v as asn1js.Constructed).valueBlock?.value;
  if (!Array.isArray(inner) || inner.length !== 1) fail(`${what} is not one explicitly tagged value`);
  return (inner as asn1js.AsnType[])[0] as asn1js.AsnType;
}
