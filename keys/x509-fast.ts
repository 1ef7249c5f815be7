// The fields of a MilkyWay certificate read straight from its DER bytes, without building
// asn1js's tree: asn1js decodes every value into objects (and tries each BIT and OCTET STRING's
// contents as nested BER), about 0.3–0.5 ms of CPU for one ML-DSA-65 peer certificate, which an
// operator paid for every peer of a fleet on its first round and a broker on every connect
// (`npm run bench -- operator-verify`). This reader runs after assertStrictDer (der.ts) has checked
// the framing of every value, and only on the encodings this profile issues: whenever it meets
// anything else (another string type in a name, a time or an integer of another form, a huge OID
// arc) it answers `undefined` and certificate.ts reads the certificate with asn1js as before, so
// what is accepted and what each field reads as never depends on which reader ran
// (test/keys/x509-fast.test.ts compares the two on issued certificates and damaged ones).

/** One value: its tag byte and where its contents lie in the DER. */
export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** Thrown inside this module when the fast reader gives up; never escapes it. */
class Unsupported extends Error {}

const give = (): never => {
  throw new Unsupported();
};

function tlvAt(der: Uint8Array, at: number, limit: number): Tlv & { next: number } {
  if (at + 2 > limit) give();
  const tag = der[at] as number;
  if ((tag & 0x1f) === 0x1f) give(); // high tag numbers: not in this profile
  let p = at + 1;
  const first = der[p++] as number;
  let length = first;
  if (first >= 0x80) {
    const octets = first & 0x7f;
    if (octets === 0 || octets > 4 || p + octets > limit) give();
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[p++] as number);
  }
  if (p + length > limit) give();
  return { tag, start: p, end: p + length, next: p + length };
}

/** The values inside a constructed value (or the whole input for `outer` undefined). */
export function childrenOf(der: Uint8Array, outer: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = outer.start; at < outer.end; ) {
    const t = tlvAt(der, at, outer.end);
    out.push({ tag: t.tag, start: t.start, end: t.end });
    at = t.next;
  }
  return out;
}

function need(v: Tlv | undefined, tag: number): Tlv {
  if (v === undefined || v.tag !== tag) give();
  return v as Tlv;
}

function seq(der: Uint8Array, v: Tlv | undefined): Tlv[] {
  return childrenOf(der, need(v, 0x30));
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function textOf(der: Uint8Array, v: Tlv): string {
  const bytes = der.subarray(v.start, v.end);
  if (v.tag === 0x0c) {
    try {
      return utf8.decode(bytes);
    } catch {
      return give();
    }
  }
  // PrintableString, IA5String: asn1js reads each byte as one character code.
  if (v.tag === 0x13 || v.tag === 0x16) return String.fromCharCode(...bytes);
  return give();
}

/** OID text; big arcs (the profile's 2.25.<UUID>) in decimal as asn1-oid-fix.ts prints them. */
export function oidText(der: Uint8Array, v: Tlv | undefined): string {
  const o = need(v, 0x06);
  if (o.end === o.start) give();
  const arcs: string[] = [];
  let groups = 0;
  let n = 0n;
  for (let p = o.start; p < o.end; p++) {
    const b = der[p] as number;
    if (groups === 0 && b === 0x80) give(); // asn1js warns of the long form; left to it
    n = (n << 7n) | BigInt(b & 0x7f);
    groups++;
    if ((b & 0x80) !== 0) continue;
    if (arcs.length === 0) {
      // asn1js decodes up to 8 groups as a Number (inexact past 2^53): those go to it.
      if (groups > 8 || n >= 2n ** 53n) give();
      const first = Number(n);
      arcs.push(
        first <= 39 ? '0' : first <= 79 ? '1' : '2',
        String(first <= 39 ? first : first <= 79 ? first - 40 : first - 80),
      );
    } else {
      if (groups <= 8 && n >= 2n ** 53n) give();
      arcs.push(n.toString());
    }
    n = 0n;
    groups = 0;
  }
  if (groups !== 0) give();
  return arcs.join('.');
}

/** INTEGER as lowercase hex, less the sign octet (x509-asn1.ts integerHex). */
function integerHex(der: Uint8Array, v: Tlv | undefined): string {
  const i = need(v, 0x02);
  let s = i.start;
  if (i.end === s) give();
  if (i.end - s > 1 && der[s] === 0 && (der[s + 1] as number) > 0x7f) s++;
  return Buffer.from(der.subarray(s, i.end)).toString('hex');
}

const digits = (der: Uint8Array, from: number, count: number): number => {
  let n = 0;
  for (let p = from; p < from + count; p++) {
    const c = (der[p] as number) - 0x30;
    if (c < 0 || c > 9) give();
    n = n * 10 + c;
  }
  return n;
};

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280's only forms), as asn1js dates them. */
function timeOf(der: Uint8Array, v: Tlv | undefined): Date {
  if (v === undefined) return give();
  const len = v.end - v.start;
  let p = v.start;
  let year: number;
  if (v.tag === 0x17 && len === 13) {
    const yy = digits(der, p, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p += 2;
  } else if (v.tag === 0x18 && len === 15) {
    year = digits(der, p, 4);
    p += 4;
  } else return give();
  if (der[v.end - 1] !== 0x5a) give(); // 'Z'
  const month = digits(der, p, 2);
  const day = digits(der, p + 2, 2);
  const hour = digits(der, p + 4, 2);
  const minute = digits(der, p + 6, 2);
  const second = digits(der, p + 8, 2);
  // Out-of-range fields are left to asn1js (which says how it reads them).
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) give();
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second));
}

/** The first common name of a Name, validating every RDN as x509-asn1.ts attributes() does. */
function commonName(der: Uint8Array, v: Tlv | undefined): string {
  let cn: string | undefined;
  for (const rdn of seq(der, v)) {
    const set = childrenOf(der, need(rdn, 0x31));
    if (set.length === 0) give();
    for (const atv of set) {
      const f = seq(der, atv);
      if (f.length !== 2) give();
      const type = oidText(der, f[0]);
      const value = f[1] as Tlv;
      // Every value is a string of a kind decoded here; anything else is asn1js's to read.
      const text = textOf(der, value);
      if (cn === undefined && type === '2.5.4.3') cn = text;
    }
  }
  // A name without a CN prints as its whole text (nameText): asn1js's path does that.
  return cn ?? give();
}

export interface FastExtension {
  critical: boolean;
  value: Tlv;
}

function extensionsOf(der: Uint8Array, v: Tlv): Map<string, FastExtension> {
  const out = new Map<string, FastExtension>();
  for (const e of seq(der, v)) {
    const f = seq(der, e);
    const oid = oidText(der, f[0]);
    let at = 1;
    let critical = false;
    if (f[at]?.tag === 0x01) critical = booleanOf(der, f[at++] as Tlv);
    const octets = need(f[at], 0x04);
    if (f.length !== at + 1) give();
    if (out.has(oid)) give(); // refused by asn1js's path with its message
    out.set(oid, { critical, value: octets });
  }
  return out;
}

function booleanOf(der: Uint8Array, v: Tlv): boolean {
  if (v.end - v.start !== 1) give();
  const b = der[v.start] as number;
  if (b !== 0 && b !== 0xff) give();
  return b === 0xff;
}

/** The one value an extension's OCTET STRING holds. */
function inner(der: Uint8Array, ext: FastExtension): Tlv {
  const t = tlvAt(der, ext.value.start, ext.value.end);
  if (t.next !== ext.value.end) give();
  return { tag: t.tag, start: t.start, end: t.end };
}

export interface FastFields {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  issuer: string;
  spkiOid: string;
  role: string;
  ca: boolean;
  pathLen: number | undefined;
  dnsNames: string[];
  peerId: string | undefined;
  scopeText: string | undefined;
  kemKey: Uint8Array | undefined;
}

/**
 * The fields certificate.ts reads, or undefined when the certificate holds anything this reader
 * leaves to asn1js (including everything asn1js's path refuses: that path then says why).
 */
export function fastFields(
  der: Uint8Array,
  oids: {
    role: string;
    basicConstraints: string;
    keyUsage: string;
    extKeyUsage: string;
    san: string;
    scope: string;
    kem: string;
  },
  peerUriPrefix: string,
): FastFields | undefined {
  try {
    const whole = tlvAt(der, 0, der.length);
    if (whole.next !== der.length) give();
    const top = seq(der, whole);
    if (top.length !== 3) give();
    need(top[1], 0x30);
    need(top[2], 0x03);
    const tbs = seq(der, top[0]);
    let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
    const serial = integerHex(der, tbs[i++]);
    need(tbs[i++], 0x30);
    const issuerName = tbs[i++];
    const validity = seq(der, tbs[i++]);
    if (validity.length !== 2) give();
    const notBefore = timeOf(der, validity[0]);
    const notAfter = timeOf(der, validity[1]);
    const subjectName = tbs[i++];
    const spki = seq(der, tbs[i++]);
    const spkiOid = oidText(der, seq(der, spki[0])[0]);
    if (tbs[i]?.tag === 0x81 || tbs[i]?.tag === 0xa1) i++;
    if (tbs[i]?.tag === 0x82 || tbs[i]?.tag === 0xa2) i++;
    let exts = new Map<string, FastExtension>();
    if (tbs[i]?.tag === 0xa3) {
      const wrapped = childrenOf(der, tbs[i++] as Tlv);
      if (wrapped.length !== 1) give();
      exts = extensionsOf(der, wrapped[0] as Tlv);
    }
    if (i !== tbs.length) give();
    // No role: asn1js's path names what is missing.
    const role = utf8Only(der, inner(der, exts.get(oids.role) ?? give()));
    let ca = false;
    let pathLen: number | undefined;
    const bcExt = exts.get(oids.basicConstraints);
    if (bcExt !== undefined) {
      const f = seq(der, inner(der, bcExt));
      let k = 0;
      if (f[k]?.tag === 0x01) ca = booleanOf(der, f[k++] as Tlv);
      if (f[k] !== undefined) {
        const n = need(f[k++], 0x02);
        // One octet 0..127 is every pathLen this profile issues; others are asn1js's.
        if (n.end - n.start !== 1 || (der[n.start] as number) > 0x7f) give();
        pathLen = der[n.start] as number;
      }
      if (k !== f.length) give();
    }
    const kuExt = exts.get(oids.keyUsage);
    if (kuExt !== undefined) {
      const bits = need(inner(der, kuExt), 0x03);
      if (bits.end === bits.start) give();
      const unused = der[bits.start] as number;
      if (unused > 7 || (bits.end - bits.start === 1 && unused !== 0)) give();
    }
    const ekuExt = exts.get(oids.extKeyUsage);
    if (ekuExt !== undefined) {
      const ids = seq(der, inner(der, ekuExt));
      if (ids.length === 0) give();
      for (const id of ids) oidText(der, id);
    }
    const dnsNames: string[] = [];
    let peerId: string | undefined;
    const sanExt = exts.get(oids.san);
    if (sanExt !== undefined) {
      for (const g of seq(der, inner(der, sanExt))) {
        if ((g.tag & 0xc0) !== 0x80) give();
        const number = g.tag & 0x1f;
        if (number !== 2 && number !== 6) continue;
        if ((g.tag & 0x20) !== 0) give();
        const value = Buffer.from(der.subarray(g.start, g.end)).toString('latin1');
        if (number === 2) dnsNames.push(value);
        else if (value.startsWith(peerUriPrefix)) peerId = value.slice(peerUriPrefix.length);
      }
    }
    const scopeExt = exts.get(oids.scope);
    const scopeText = scopeExt === undefined ? undefined : utf8Only(der, inner(der, scopeExt));
    let kemKey: Uint8Array | undefined;
    const kemExt = exts.get(oids.kem);
    if (kemExt !== undefined) {
      const k = need(inner(der, kemExt), 0x04);
      kemKey = new Uint8Array(der.subarray(k.start, k.end));
    }
    return {
      serial,
      notBefore,
      notAfter,
      subject: commonName(der, subjectName),
      issuer: commonName(der, issuerName),
      spkiOid,
      role,
      ca,
      pathLen,
      dnsNames,
      peerId,
      scopeText,
      kemKey,
    };
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}

function utf8Only(der: Uint8Array, v: Tlv): string {
  return textOf(der, need(v, 0x0c));
}
