// keys/ parses certificates and CRLs with asn1js (keys/x509-asn1.ts), not @peculiar/x509, so
// verifying a chain does not load that library. Every field it reads is cross-checked against
// two parsers nobody here wrote: @peculiar/x509 (still the issuer) and the openssl command.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import test from 'ava';
import * as asn1js from 'asn1js';
import { webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/exec.ts';
import { crlPem, issueCrl, parseCertificates, parseCrl } from '../../keys/index.ts';
import { OID_ROLE } from '../../keys/oids.ts';
import { tempDir } from '../helpers.ts';
import { codeOf, makePki } from './fixture.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const pki = makePki();

const ab = (u: Uint8Array): ArrayBuffer => new Uint8Array(u).buffer;

async function openssl(args: string[]): Promise<string> {
  // Debian's openssl (3.0) does not know ML-DSA, but it parses the structure around the key.
  return (await run('openssl', args, { timeout: 30_000 })).stdout;
}

test('every field read from an issued certificate matches @peculiar/x509 and openssl x509', async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  for (const id of [
    p.root,
    p.peer,
    p.operator,
    p.broker,
    p.vendorRoot,
    p.vendor,
    p.peerIssuer,
    p.issuedPeer,
  ]) {
    const c = id.cert;
    const x = new x509.X509Certificate(ab(c.der));
    const what = c.subject;
    t.is(c.subject, x.subjectName.getField('CN')[0] as string, what);
    t.is(c.issuer, x.issuerName.getField('CN')[0] as string, what);
    t.is(c.serial, x.serialNumber.toLowerCase(), what);
    t.is(c.notBefore.getTime(), x.notBefore.getTime(), what);
    t.is(c.notAfter.getTime(), x.notAfter.getTime(), what);
    const bc = x.getExtension(x509.BasicConstraintsExtension);
    t.is(c.isCA, bc?.ca ?? false, what);
    t.is(c.pathLen, bc?.pathLength, what);
    const san = x.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
    t.deepEqual(
      c.dnsNames,
      san.filter((g) => g.type === 'dns').map((g) => g.value),
      what,
    );
    const file = join(d, `${c.fingerprint}.crt`);
    await writeFile(file, c.pem);
    const o = await openssl(['x509', '-in', file, '-noout', '-serial', '-subject', '-ext', 'subjectAltName']);
    // openssl prints the serial's content octets in uppercase.
    t.is(/^serial=(\S+)$/m.exec(o)?.[1], c.serial.toUpperCase(), what);
    t.regex(o, new RegExp(`^subject=CN ?= ?${c.subject}\\b`, 'm'), what);
    for (const dns of c.dnsNames) t.regex(o, new RegExp(`DNS:${dns.replace('.', '\\.')}`), what);
    if (c.peerId !== undefined) t.regex(o, new RegExp(`URI:milkyway:peer:${c.peerId}\\b`), what);
  }
  t.is(p.peer.cert.peerId, 'peer-1');
  t.deepEqual(p.peer.cert.dnsNames, ['peer1.local']);
  t.is(p.root.cert.pathLen, 1);
  t.is(p.peerIssuer.cert.pathLen, 0);
});

test('an issued CRL reads the same as @peculiar/x509 and openssl crl read it', async (t) => {
  const p = await pki;
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.peer.cert.serial, p.operator.cert.serial, '00ff01'],
  });
  const x = new x509.X509Crl(ab(crl.der));
  t.is(crl.issuer, x.issuer);
  t.is(crl.issuer, 'CN=root, O=MilkyWay user-root');
  t.deepEqual(
    crl.serials,
    x.entries.map((e) => e.serialNumber.toLowerCase()),
  );
  t.is(crl.thisUpdate.getTime(), x.thisUpdate.getTime());
  t.is(crl.nextUpdate?.getTime(), x.nextUpdate?.getTime());
  t.deepEqual(Buffer.from(crl.tbs), Buffer.from((x as unknown as { tbs: ArrayBuffer }).tbs));
  t.deepEqual(Buffer.from(crl.signature), Buffer.from(x.signature));
  const file = join(await tempDir(t), 'root.crl');
  await writeFile(file, crlPem(crl));
  const o = await openssl(['crl', '-in', file, '-noout', '-text']);
  const listed = [...o.matchAll(/Serial Number: (\S+)/g)].map((m) => (m[1] as string).toLowerCase());
  t.deepEqual(listed.sort(), crl.serials.map((s) => s.replace(/^(00)+/, '')).sort());
  t.regex(o, /Issuer: CN ?= ?root, O ?= ?MilkyWay user-root/);
});

test('a CRL issuer name with escapes, several RDN types and a multi-valued RDN prints as @peculiar/x509 prints it', async (t) => {
  const p = await pki;
  const signingKey = await p.root.key.privateKey.toCryptoKey({ name: 'ML-DSA-65' }, false, ['sign']);
  for (const issuer of [
    'CN=a\\,b+OU=x y, O=Milky\\"Way, C=DE',
    'CN=root, O=MilkyWay user-root, L=Köln, 2.5.4.5=123',
    'E=ops@example.org, DC=example, ST=NRW',
  ]) {
    const c = await x509.X509CrlGenerator.create({
      issuer,
      thisUpdate: new Date(),
      signingAlgorithm: { name: 'ML-DSA-65' },
      signingKey: signingKey as unknown as x509.X509CrlCreateParams['signingKey'],
      entries: [],
    });
    const der = new Uint8Array(c.rawData);
    t.is(parseCrl(der).issuer, new x509.X509Crl(ab(der)).issuer, issuer);
    t.is(parseCrl(der).nextUpdate, undefined);
  }
});

test('a certificate that repeats an extension is refused (RFC 5280 §4.2), not read one way or the other', async (t) => {
  const p = await pki;
  const alg = { name: 'ML-DSA-65' };
  const signingKey = await p.root.key.privateKey.toCryptoKey(alg, false, ['sign']);
  const publicKey = await p.peer.key.publicKey.toCryptoKey(alg, true, ['verify']);
  const role = (r: string) =>
    new x509.Extension(OID_ROLE, false, new asn1js.Utf8String({ value: r }).toBER());
  const make = (exts: x509.Extension[]) =>
    x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: 'CN=twice',
      issuer: 'CN=root, O=MilkyWay user-root',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: alg,
      publicKey: publicKey as unknown as x509.X509CrlCreateParams['signingKey'],
      signingKey: signingKey as unknown as x509.X509CrlCreateParams['signingKey'],
      extensions: exts,
    });
  const once = await make([role('operator')]);
  t.is(parseCertificates(new Uint8Array(once.rawData))[0]?.role, 'operator');
  const twice = await make([role('operator'), role('user-root')]);
  t.is(
    codeOf(() => parseCertificates(new Uint8Array(twice.rawData))),
    'E_CERT_MALFORMED',
  );
});
