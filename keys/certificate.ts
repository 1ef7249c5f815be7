// Parsing X.509 v3 certificates (RFC 5280) of the MilkyWay profile into `Certificate`:
// Node's X509Certificate for the core fields, @peculiar/x509 for the extensions.
import 'reflect-metadata';
import './asn1-oid-fix.ts';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { createHash, type KeyObject, X509Certificate as NodeX509 } from 'node:crypto';
import { errorMessage, readRegularFile } from '../common/index.ts';
import { rawPublicKey } from './algorithms.ts';
import { assertStrictDer } from './der.ts';
import { KeysError } from './errors.ts';
import { OID_ALGORITHMS, OID_KEM_KEY, OID_ROLE, OID_SCOPE, PEER_URI_PREFIX } from './oids.ts';
import { decodePem, looksPem } from './pem.ts';
import { type Certificate, ROLES, type Role, type SignatureAlgorithm } from './types.ts';

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

function utf8Ext(ext: x509.Extension, what: string): string {
  const r = asn1js.fromBER(ext.value);
  if (r.offset === -1 || !(r.result instanceof asn1js.Utf8String)) {
    throw new KeysError('E_CERT_MALFORMED', `Certificate ${what} extension is not a UTF8String`);
  }
  return r.result.valueBlock.value;
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

function cnOf(name: x509.Name): string {
  const cn = name.getField('CN')[0];
  return cn ?? name.toString();
}

/**
 * Parsed certificates by DER SHA-256. Parsing costs about 2 ms (two ASN.1 decoders) and a
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

function decodeFields(der: Uint8Array, fingerprint: string): Certificate {
  const n = new NodeX509(Buffer.from(der));
  const p = new x509.X509Certificate(ownArrayBuffer(der));
  const algOid = (p.publicKey.algorithm as { name?: string }).name;
  const spkiOid = readSpkiOid(p);
  const algorithm = OID_ALGORITHMS[spkiOid] as SignatureAlgorithm | undefined;
  if (algorithm === undefined) {
    throw new KeysError(
      'E_ALG_UNKNOWN',
      `Certificate public key algorithm ${spkiOid} (${algOid}) is not one MilkyWay uses`,
    );
  }
  const roleExt = extension(p, OID_ROLE);
  if (roleExt === null) throw new KeysError('E_CERT_MALFORMED', 'Certificate has no MilkyWay role extension');
  const role = utf8Ext(roleExt, 'role');
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new KeysError(
      'E_CERT_MALFORMED',
      `Certificate role ${JSON.stringify(role)} is not a MilkyWay role`,
    );
  }
  const bc = p.getExtension(x509.BasicConstraintsExtension);
  const san = p.getExtension(x509.SubjectAlternativeNameExtension);
  const dnsNames: string[] = [];
  let peerId: string | undefined;
  for (const g of san?.names.items ?? []) {
    if (g.type === 'dns') dnsNames.push(g.value);
    if (g.type === 'url' && g.value.startsWith(PEER_URI_PREFIX))
      peerId = g.value.slice(PEER_URI_PREFIX.length);
  }
  const cert: Certificate = {
    der: new Uint8Array(der),
    pem: n.toString(),
    fingerprint,
    subject: cnOf(p.subjectName),
    issuer: cnOf(p.issuerName),
    serial: p.serialNumber.toLowerCase(),
    role: role as Role,
    algorithm,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    isCA: bc?.ca ?? false,
    pathLen: bc?.pathLength,
    dnsNames,
    publicKey: rawPublicKey(n.publicKey),
  };
  if (peerId !== undefined) cert.peerId = peerId;
  const scopeExt = extension(p, OID_SCOPE);
  if (scopeExt !== null) cert.scope = parseScope(utf8Ext(scopeExt, 'scope'));
  const kemExt = extension(p, OID_KEM_KEY);
  if (kemExt !== null) {
    const r = asn1js.fromBER(kemExt.value);
    if (r.offset === -1 || !(r.result instanceof asn1js.OctetString)) {
      throw new KeysError('E_CERT_MALFORMED', 'Certificate KEM key extension is not an OCTET STRING');
    }
    const key = new Uint8Array(r.result.valueBlock.valueHexView);
    if (key.length !== 1184) {
      throw new KeysError(
        'E_CERT_MALFORMED',
        `Certificate KEM key is ${key.length} bytes, expected 1184 (ML-KEM-768)`,
      );
    }
    cert.kemPublicKey = key;
  }
  nodeCerts.set(cert, n);
  return cert;
}

function extension(p: x509.X509Certificate, oid: string): x509.Extension | null {
  const all = p.extensions.filter((e) => e.type === oid);
  if (all.length > 1) throw new KeysError('E_CERT_MALFORMED', `Certificate repeats extension ${oid}`);
  return all[0] ?? null;
}

function readSpkiOid(p: x509.X509Certificate): string {
  const r = asn1js.fromBER(p.publicKey.rawData);
  const seq = r.result as asn1js.Sequence;
  const algSeq = seq.valueBlock?.value?.[0] as asn1js.Sequence | undefined;
  const oid = algSeq?.valueBlock?.value?.[0];
  if (!(oid instanceof asn1js.ObjectIdentifier)) {
    throw new KeysError('E_CERT_MALFORMED', 'Certificate SubjectPublicKeyInfo has no algorithm identifier');
  }
  return oid.valueBlock.toString();
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
