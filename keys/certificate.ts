// Parsing X.509 v3 certificates (RFC 5280) of the MilkyWay profile into `Certificate`:
// Node's X509Certificate (OpenSSL) for the public key and the signature checks, asn1js for the
// fields and extensions (x509-asn1.ts). @peculiar/x509 is for issuing only (x509-lib.ts).
import * as asn1js from 'asn1js';
import { createHash, type KeyObject, X509Certificate as NodeX509 } from 'node:crypto';
import { errorMessage, readRegularFile } from '../common/index.ts';
import { rawPublicKey } from './algorithms.ts';
import { assertStrictDer } from './der.ts';
import { KeysError } from './errors.ts';
import {
  OID_ALGORITHMS,
  OID_BASIC_CONSTRAINTS,
  OID_EXT_KEY_USAGE,
  OID_KEM_KEY,
  OID_KEY_USAGE,
  OID_ROLE,
  OID_SAN,
  OID_SCOPE,
  PEER_URI_PREFIX,
} from './oids.ts';
import { decodePem, looksPem } from './pem.ts';
import { type FastFields, fastFields } from './x509-fast.ts';
import { type Certificate, ROLES, type Role, type SignatureAlgorithm } from './types.ts';
import {
  children,
  commonName,
  decodeDer,
  type Extension,
  expect,
  explicitInner,
  extensions,
  type Fail,
  integerHex,
  isContext,
  oidOf,
  timeOf,
} from './x509-asn1.ts';

/** Size caps checked before parsing (doc/certificate-profile.md). */
export const MAX_CERT_DER = 64 * 1024;
export const MAX_CHAIN = 8;
export const MAX_PEM_FILE = MAX_CERT_DER * MAX_CHAIN * 2;

const nodeCerts = new WeakMap<Certificate, NodeX509>();

/** Node's view of a parsed certificate (for signature checks and public key). */
export function nodeCertificate(cert: Certificate): NodeX509 {
  let n = nodeCerts.get(cert);
  if (n === undefined) {
    n = new NodeX509(Buffer.from(cert.der));
    nodeCerts.set(cert, n);
  }
  return n;
}

export function certificatePublicKey(cert: Certificate): KeyObject {
  return nodeCertificate(cert).publicKey;
}

export function encodeUtf8Ext(value: string): ArrayBuffer {
  return new asn1js.Utf8String({ value }).toBER();
}

export function encodeOctetsExt(value: Uint8Array): ArrayBuffer {
  return new asn1js.OctetString({ valueHex: ownArrayBuffer(value) }).toBER();
}

/**
 * A fresh ArrayBuffer holding exactly `bytes`. `bytes.slice().buffer` is wrong for a Node
 * Buffer: Buffer#slice is a view, so `.buffer` would be the whole shared pool (every caller
 * that read a file or a socket hands us such a view).
 */
export function ownArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

/**
 * Parsed certificates by DER SHA-256. Parsing costs about a millisecond (OpenSSL's and asn1js's decoders) and a
 * broker or agent sees the same few certificates on every message; the key is the digest of
 * every byte, so a changed byte is a different entry. Bounded: the oldest entry goes first.
 */
const parsed = new Map<string, Certificate>();
const PARSED_MAX = 4096;

/** Parses one DER certificate; every failure is E_CERT_MALFORMED (or E_TOO_LARGE / E_ALG_UNKNOWN). */
export function parseCertificateDer(der: Uint8Array): Certificate {
  if (der.length > MAX_CERT_DER) {
    throw new KeysError('E_TOO_LARGE', `Certificate is ${der.length} bytes, at most ${MAX_CERT_DER} allowed`);
  }
  const fingerprint = createHash('sha256').update(der).digest('hex');
  const hit = parsed.get(fingerprint);
  if (hit !== undefined) return hit;
  // Strict DER first: the fingerprint names these bytes, so they must be the only encoding.
  assertStrictDer(der, 'E_CERT_MALFORMED', 'Certificate');
  const cert = decodeCertificate(der, fingerprint);
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(fingerprint, cert);
  return cert;
}

/**
 * The whole decode sits inside one error mapping: extensions, the public key and the SAN are
 * decoded lazily by the libraries and throw their own errors on hostile bytes, which would
 * otherwise escape as E_INTERNAL (or, in the control path, be blamed on the peer's disk).
 */
function decodeCertificate(der: Uint8Array, fingerprint: string): Certificate {
  try {
    return decodeFields(der, fingerprint);
  } catch (e) {
    if (e instanceof KeysError) throw e;
    throw new KeysError('E_CERT_MALFORMED', `Cannot decode certificate: ${errorMessage(e)}`, { cause: e });
  }
}

/** The profile's extension OIDs, as the fast reader (x509-fast.ts) looks for them. */
export const FAST_OIDS = {
  role: OID_ROLE,
  basicConstraints: OID_BASIC_CONSTRAINTS,
  keyUsage: OID_KEY_USAGE,
  extKeyUsage: OID_EXT_KEY_USAGE,
  san: OID_SAN,
  scope: OID_SCOPE,
  kem: OID_KEM_KEY,
};

function decodeFields(der: Uint8Array, fingerprint: string): Certificate {
  const fail: Fail = (m) => {
    throw new KeysError('E_CERT_MALFORMED', `Certificate ${m}`);
  };
  // OpenSSL's parse first (it is strict and gives the public key and PEM), then the fields:
  // read from the bytes directly when they are the encodings this profile issues, else by asn1js.
  const n = new NodeX509(Buffer.from(der));
  const f = fastFields(der, FAST_OIDS, PEER_URI_PREFIX) ?? asn1Fields(der, fail);
  const algorithm = OID_ALGORITHMS[f.spkiOid] as SignatureAlgorithm | undefined;
  if (algorithm === undefined) {
    throw new KeysError(
      'E_ALG_UNKNOWN',
      `Certificate public key algorithm ${f.spkiOid} is not one MilkyWay uses`,
    );
  }
  if (!(ROLES as readonly string[]).includes(f.role))
    fail(`role ${JSON.stringify(f.role)} is not a MilkyWay role`);
  const cert: Certificate = {
    der: new Uint8Array(der),
    pem: n.toString(),
    fingerprint,
    subject: f.subject,
    issuer: f.issuer,
    serial: f.serial,
    role: f.role as Role,
    algorithm,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    isCA: f.ca,
    pathLen: f.pathLen,
    dnsNames: f.dnsNames,
    publicKey: rawPublicKey(n.publicKey),
  };
  if (f.peerId !== undefined) cert.peerId = f.peerId;
  if (f.scopeText !== undefined) cert.scope = parseScope(f.scopeText);
  if (f.kemKey !== undefined) {
    if (f.kemKey.length !== 1184) fail(`KEM key is ${f.kemKey.length} bytes, expected 1184 (ML-KEM-768)`);
    cert.kemPublicKey = f.kemKey;
  }
  nodeCerts.set(cert, n);
  return cert;
}

/**
 * The same fields read through asn1js's tree: every certificate the fast reader leaves (and the
 * reference test/keys/x509-fast.test.ts compares it with). Its checks run in this order, so a
 * certificate with several faults is refused for the same one whichever reader ran.
 */
export function asn1Fields(der: Uint8Array, fail: Fail): FastFields {
  const top = children(decodeDer(der, 'DER', fail), 'DER', fail);
  if (top.length !== 3) fail('is not (tbsCertificate, signatureAlgorithm, signature)');
  expect(top[1], asn1js.Sequence, 'signatureAlgorithm', fail);
  expect(top[2], asn1js.BitString, 'signature', fail);
  // TBSCertificate, RFC 5280 §4.1: version [0], serial, signature, issuer, validity, subject,
  // subjectPublicKeyInfo, issuerUniqueID [1], subjectUniqueID [2], extensions [3].
  const tbs = children(top[0], 'tbsCertificate', fail);
  let i = isContext(tbs[0], 0) ? 1 : 0;
  const serial = integerHex(tbs[i++], 'serial number', fail);
  expect(tbs[i++], asn1js.Sequence, 'signature algorithm', fail);
  const issuerName = tbs[i++];
  const validity = children(tbs[i++], 'validity', fail);
  if (validity.length !== 2) fail('validity is not (notBefore, notAfter)');
  const notBefore = timeOf(validity[0], 'notBefore', fail);
  const notAfter = timeOf(validity[1], 'notAfter', fail);
  const subjectName = tbs[i++];
  const spki = children(tbs[i++], 'SubjectPublicKeyInfo', fail);
  const spkiOid = oidOf(children(spki[0], 'public key algorithm', fail)[0], 'public key algorithm', fail);
  if (isContext(tbs[i], 1)) i++;
  if (isContext(tbs[i], 2)) i++;
  const exts = isContext(tbs[i], 3)
    ? extensions(explicitInner(tbs[i++] as asn1js.AsnType, 'extensions', fail), 'Certificate', fail)
    : new Map<string, Extension>();
  if (i !== tbs.length) fail(`tbsCertificate has ${tbs.length - i} unexpected fields`);
  if (OID_ALGORITHMS[spkiOid] === undefined) {
    throw new KeysError(
      'E_ALG_UNKNOWN',
      `Certificate public key algorithm ${spkiOid} is not one MilkyWay uses`,
    );
  }
  const roleExt = exts.get(OID_ROLE);
  if (roleExt === undefined) fail('has no MilkyWay role extension');
  const role = utf8Ext(roleExt as Extension, 'role', fail);
  if (!(ROLES as readonly string[]).includes(role))
    fail(`role ${JSON.stringify(role)} is not a MilkyWay role`);
  const bc = basicConstraints(exts.get(OID_BASIC_CONSTRAINTS), fail);
  checkKeyUsage(exts.get(OID_KEY_USAGE), fail);
  checkExtKeyUsage(exts.get(OID_EXT_KEY_USAGE), fail);
  const dnsNames: string[] = [];
  let peerId: string | undefined;
  for (const g of subjectAltNames(exts.get(OID_SAN), fail)) {
    if (g.type === 'dns') dnsNames.push(g.value);
    if (g.type === 'url' && g.value.startsWith(PEER_URI_PREFIX))
      peerId = g.value.slice(PEER_URI_PREFIX.length);
  }
  const subject = commonName(subjectName, 'subject', fail);
  const issuer = commonName(issuerName, 'issuer', fail);
  const scopeExt = exts.get(OID_SCOPE);
  const scopeText = scopeExt === undefined ? undefined : utf8Ext(scopeExt, 'scope', fail);
  const kemExt = exts.get(OID_KEM_KEY);
  let kemKey: Uint8Array | undefined;
  if (kemExt !== undefined) {
    const v = decodeDer(kemExt.value, 'KEM key extension', fail);
    kemKey = new Uint8Array(expect(v, asn1js.OctetString, 'KEM key extension', fail).valueBlock.valueHexView);
  }
  return {
    serial,
    notBefore,
    notAfter,
    subject,
    issuer,
    spkiOid,
    role,
    ca: bc.ca,
    pathLen: bc.pathLen,
    dnsNames,
    peerId,
    scopeText,
    kemKey,
  };
}

function utf8Ext(ext: Extension, what: string, fail: Fail): string {
  const v = decodeDer(ext.value, `${what} extension`, fail);
  return expect(v, asn1js.Utf8String, `${what} extension (a UTF8String)`, fail).valueBlock.value;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }. */
function basicConstraints(
  ext: Extension | undefined,
  fail: Fail,
): { ca: boolean; pathLen: number | undefined } {
  if (ext === undefined) return { ca: false, pathLen: undefined };
  const fields = children(decodeDer(ext.value, 'basicConstraints', fail), 'basicConstraints', fail);
  let i = 0;
  let ca = false;
  if (fields[i] instanceof asn1js.Boolean) ca = (fields[i++] as asn1js.Boolean).valueBlock.value;
  let pathLen: number | undefined;
  if (fields[i] !== undefined) {
    const n = expect(fields[i++], asn1js.Integer, 'basicConstraints pathLenConstraint', fail);
    if (n.valueBlock.valueHexView.length > 4 || n.valueBlock.valueDec < 0)
      fail('basicConstraints pathLenConstraint is out of range');
    pathLen = n.valueBlock.valueDec;
  }
  if (i !== fields.length) fail('basicConstraints has extra fields');
  return { ca, pathLen };
}

/**
 * KeyUsage ::= BIT STRING (RFC 5280 §4.2.1.3). The profile's decisions do not read it (roles
 * do), but OpenSSL does when the certificate is used for TLS: a damaged one is refused here
 * rather than read one way by us and another by OpenSSL.
 */
function checkKeyUsage(ext: Extension | undefined, fail: Fail): void {
  if (ext === undefined) return;
  const bits = expect(decodeDer(ext.value, 'keyUsage', fail), asn1js.BitString, 'keyUsage', fail).valueBlock;
  if (bits.unusedBits > 7 || (bits.valueHexView.length === 0 && bits.unusedBits !== 0))
    fail(`keyUsage BIT STRING has ${bits.unusedBits} unused bits`);
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (an OID), RFC 5280 §4.2.1.12. */
function checkExtKeyUsage(ext: Extension | undefined, fail: Fail): void {
  if (ext === undefined) return;
  const ids = children(decodeDer(ext.value, 'extKeyUsage', fail), 'extKeyUsage', fail);
  if (ids.length === 0) fail('extKeyUsage is empty');
  for (const id of ids) oidOf(id, 'extKeyUsage purpose', fail);
}

/**
 * SubjectAltName ::= GeneralNames, a SEQUENCE OF GeneralName (RFC 5280 §4.2.1.6); the profile
 * reads dNSName [2] and uniformResourceIdentifier [6], both IMPLICIT IA5String.
 */
function subjectAltNames(
  ext: Extension | undefined,
  fail: Fail,
): Array<{ type: 'dns' | 'url'; value: string }> {
  if (ext === undefined) return [];
  const out: Array<{ type: 'dns' | 'url'; value: string }> = [];
  for (const g of children(decodeDer(ext.value, 'subjectAltName', fail), 'subjectAltName', fail)) {
    if (g.idBlock.tagClass !== 3) fail('subjectAltName holds a value that is no GeneralName');
    const type = isContext(g, 2) ? 'dns' : isContext(g, 6) ? 'url' : undefined;
    if (type === undefined) continue;
    if (g.idBlock.isConstructed) fail(`subjectAltName ${type} name is not an IA5String`);
    out.push({
      type,
      value: Buffer.from((g as asn1js.Primitive).valueBlock.valueHexView).toString('latin1'),
    });
  }
  return out;
}

function parseScope(text: string): { groups: string[]; actions: string[] } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new KeysError('E_CERT_MALFORMED', `Certificate scope extension is not JSON: ${errorMessage(e)}`);
  }
  const o = v as { groups?: unknown; actions?: unknown };
  const strings = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === 'string');
  if (typeof v !== 'object' || v === null || !strings(o.groups) || !strings(o.actions)) {
    throw new KeysError(
      'E_CERT_MALFORMED',
      'Certificate scope extension must be {"groups":[...],"actions":[...]}',
    );
  }
  return { groups: o.groups, actions: o.actions };
}

/** Parses a PEM bundle (one or more CERTIFICATE blocks, strict armor) or one DER certificate. */
export function parseCertificates(input: string | Uint8Array, what = 'certificate input'): Certificate[] {
  if (input.length > MAX_PEM_FILE) {
    throw new KeysError(
      'E_TOO_LARGE',
      `Certificate input is ${input.length} bytes, at most ${MAX_PEM_FILE} allowed`,
    );
  }
  if (typeof input !== 'string' && !looksPem(input)) return [parseCertificateDer(input)];
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const ders = decodePem(text, 'CERTIFICATE', 'E_CERT_MALFORMED', what);
  if (ders.length > MAX_CHAIN) {
    throw new KeysError('E_TOO_LARGE', `PEM holds ${ders.length} certificates, at most ${MAX_CHAIN} allowed`);
  }
  return ders.map((d, i) => {
    try {
      return parseCertificateDer(d);
    } catch (e) {
      if (!(e instanceof KeysError) || ders.length === 1) throw e;
      throw new KeysError(e.code, `certificate ${i + 1} of ${ders.length}: ${e.message}`, { cause: e });
    }
  });
}

export async function readCertificates(path: string): Promise<Certificate[]> {
  const data = await readRegularFile(path, {
    what: 'certificate',
    readCode: 'E_CERT_READ',
    maxBytes: MAX_PEM_FILE,
    tooLargeCode: 'E_TOO_LARGE',
    error: (code, message, options) => new KeysError(code, message, options),
  });
  try {
    return parseCertificates(new Uint8Array(data), path);
  } catch (e) {
    if (e instanceof KeysError && !e.message.includes(path))
      throw new KeysError(e.code, `${path}: ${e.message}`, { path, cause: e });
    if (e instanceof KeysError) throw new KeysError(e.code, e.message, { path, cause: e });
    throw e;
  }
}

/** Certificate as PEM text. */
export function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}
