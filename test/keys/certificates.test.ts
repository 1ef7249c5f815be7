import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey } from '../../keys/algorithms.ts';
import {
  type Certificate,
  issueCertificate,
  issueCrl,
  newIdentity,
  parseCertificates,
  readPrivateKey,
  verifyChain,
  writePrivateKey,
} from '../../keys/index.ts';
import { tempDir } from '../helpers.ts';
import { codeOf, codeOfAsync, makePki } from './fixture.ts';

const pki = makePki();

test("Node's X509Certificate parses every issued certificate and verify() succeeds with the issuer key", async (t) => {
  const p = await pki;
  const pairs: Array<[Certificate, Certificate]> = [
    [p.root.cert, p.root.cert],
    [p.peer.cert, p.root.cert],
    [p.operator.cert, p.root.cert],
    [p.broker.cert, p.root.cert],
    [p.vendorRoot.cert, p.vendorRoot.cert],
    [p.vendor.cert, p.vendorRoot.cert],
  ];
  for (const [c, issuer] of pairs) {
    const x = new X509Certificate(c.der);
    t.true(x.verify(new X509Certificate(issuer.der).publicKey), c.subject);
    t.is(x.publicKey.asymmetricKeyType, 'ml-dsa-65');
    t.is(x.ca, c.isCA);
  }
});

test('ML-DSA-44 and ML-DSA-87 certificates issue and verify; SLH-DSA is refused with E_ALG_UNSUPPORTED', async (t) => {
  const dir = await tempDir(t);
  for (const algorithm of ['ml-dsa-44', 'ml-dsa-87'] as const) {
    const r = await newIdentity({ role: 'user-root', name: `r-${algorithm}`, outDir: dir, algorithm });
    const [c] = parseCertificates(await readFile(r.certPath, 'utf8'));
    t.is(c?.algorithm, algorithm);
    const x = new X509Certificate(c?.der ?? new Uint8Array());
    t.true(x.verify(x.publicKey));
  }
  t.is(
    await codeOfAsync(() =>
      newIdentity({ role: 'user-root', name: 'slh', outDir: dir, algorithm: 'slh-dsa-sha2-128s' }),
    ),
    'E_ALG_UNSUPPORTED',
  );
});

test('certificates carry role, scope, peer id, KEM key and TLS usages', async (t) => {
  const p = await pki;
  t.is(p.peer.cert.role, 'peer');
  t.is(p.peer.cert.peerId, 'peer-1');
  t.deepEqual(p.peer.cert.dnsNames, ['peer1.local']);
  t.is(p.peer.cert.kemPublicKey?.length, 1184);
  t.deepEqual(p.operator.cert.scope, { groups: ['web'], actions: ['restart', 'logs'] });
  t.true(p.root.cert.isCA);
  // The user root allows one CA below it (the peer issuer); the vendor root none.
  t.is(p.root.cert.pathLen, 1);
  t.is(p.vendorRoot.cert.pathLen, 0);
  t.true(p.peerIssuer.cert.isCA);
  t.is(p.peerIssuer.cert.pathLen, 0);
  t.false(p.peer.cert.isCA);
  const x = new X509Certificate(p.broker.cert.der);
  t.true(x.checkHost('localhost') === 'localhost');
  t.regex(new X509Certificate(p.peer.cert.der).subjectAltName ?? '', /URI:milkyway:peer:peer-1/);
  t.is(
    p.peer.cert.fingerprint,
    new X509Certificate(p.peer.cert.der).fingerprint256.replace(/:/g, '').toLowerCase(),
  );
});

test('a valid chain verifies and its leaf comes back', async (t) => {
  const p = await pki;
  t.is(
    verifyChain(p.peer.chain, { anchors: [p.root.cert], roles: ['peer'] }).fingerprint,
    p.peer.cert.fingerprint,
  );
  t.is(verifyChain([p.peer.cert], { anchors: [p.root.cert] }).subject, 'peer1');
});

test('expired and not-yet-valid certificates fail with their own codes', async (t) => {
  const p = await pki;
  const far = new Date(Date.now() + 400 * 86_400_000);
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], at: far })),
    'E_CERT_EXPIRED',
  );
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], at: new Date(2000, 0, 1) })),
    'E_CERT_NOT_YET_VALID',
  );
});

test('wrong role, untrusted root and revoked certificates fail with their own codes', async (t) => {
  const p = await pki;
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], roles: ['broker'] })),
    'E_CERT_ROLE',
  );
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.vendorRoot.cert] })),
    'E_CERT_UNTRUSTED',
  );
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.peer.cert.serial],
  });
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], crls: [crl] })),
    'E_CERT_REVOKED',
  );
  // The operator is not on that CRL.
  t.is(verifyChain(p.operator.chain, { anchors: [p.root.cert], crls: [crl] }).role, 'operator');
});

test('a CRL not signed by the issuer it names is refused with E_CRL_SIGNATURE', async (t) => {
  const p = await pki;
  const crl = await issueCrl({ issuerKey: p.root.key, issuerCert: p.root.cert, serials: [] });
  const forged = { ...crl, signature: crl.signature.map((b, i) => (i === 10 ? b ^ 1 : b)) };
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], crls: [forged] })),
    'E_CRL_SIGNATURE',
  );
});

test('an issuer that is not a CA fails with E_CERT_NOT_CA', async (t) => {
  const p = await pki;
  // Issue with the peer key, claiming (falsely) the peer were a root CA, so a real
  // certificate signed by a non-CA exists.
  const leaf = await issueCertificate({
    role: 'user',
    name: 'child',
    subjectKey: generateSigningKey('ml-dsa-65'),
    issuerKey: p.peer.key,
    issuerCert: { ...p.peer.cert, isCA: true, role: 'user-root' },
  });
  t.is(
    codeOf(() => verifyChain([leaf, p.peer.cert], { anchors: [p.root.cert] })),
    'E_CERT_NOT_CA',
  );
});

test('pathLen exceeded fails with E_CERT_PATHLEN; a CA role that may not issue fails with E_CERT_ROLE', async (t) => {
  const p = await pki;
  const interKey = generateSigningKey('ml-dsa-65');
  const inter = await issueCertificate({
    role: 'vendor',
    name: 'inter',
    subjectKey: interKey,
    issuerKey: p.vendorRoot.key,
    issuerCert: p.vendorRoot.cert,
    ca: true,
  });
  const leaf = await issueCertificate({
    role: 'vendor',
    name: 'deep',
    subjectKey: generateSigningKey('ml-dsa-65'),
    issuerKey: interKey,
    issuerCert: { ...inter, role: 'vendor-root' },
  });
  t.is(
    codeOf(() => verifyChain([leaf, inter], { anchors: [p.vendorRoot.cert] })),
    'E_CERT_PATHLEN',
  );
  // A CA below the peer issuer (pathLen 0) is refused by structure, whatever its role says.
  const underIssuerKey = generateSigningKey('ml-dsa-65');
  const underIssuer = await issueCertificate({
    role: 'peer-issuer',
    name: 'sub-issuer',
    subjectKey: underIssuerKey,
    issuerKey: p.peerIssuer.key,
    issuerCert: { ...p.peerIssuer.cert, role: 'user-root' },
  });
  const deepPeer = await issueCertificate({
    role: 'peer',
    name: 'deep-peer',
    subjectKey: generateSigningKey('ml-dsa-65'),
    kemPublicKey: p.peer.cert.kemPublicKey,
    issuerKey: underIssuerKey,
    issuerCert: underIssuer,
  });
  t.is(
    codeOf(() => verifyChain([deepPeer, underIssuer, p.peerIssuer.cert], { anchors: [p.root.cert] })),
    'E_CERT_PATHLEN',
  );
  // The same shape under a root allowing one intermediate: structure passes, role rules refuse.
  const root2Key = generateSigningKey('ml-dsa-65');
  const root2 = await issueCertificate({
    role: 'user-root',
    name: 'root2',
    subjectKey: root2Key,
    pathLen: 1,
  });
  const inter2Key = generateSigningKey('ml-dsa-65');
  const inter2 = await issueCertificate({
    role: 'user',
    name: 'inter2',
    subjectKey: inter2Key,
    issuerKey: root2Key,
    issuerCert: root2,
    ca: true,
  });
  const leaf2 = await issueCertificate({
    role: 'user',
    name: 'leaf2',
    subjectKey: generateSigningKey('ml-dsa-65'),
    issuerKey: inter2Key,
    issuerCert: { ...inter2, role: 'user-root' },
  });
  t.is(
    codeOf(() => verifyChain([leaf2, inter2], { anchors: [root2] })),
    'E_CERT_ROLE',
  );
});

test('a certificate with a flipped signature byte fails with E_CERT_SIGNATURE', async (t) => {
  const p = await pki;
  const der = new Uint8Array(p.peer.cert.der);
  der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
  const [bad] = parseCertificates(der);
  t.is(
    codeOf(() => verifyChain([bad as Certificate], { anchors: [p.root.cert] })),
    'E_CERT_SIGNATURE',
  );
});

test('malformed, truncated and oversized certificate input fail with their own codes', async (t) => {
  const p = await pki;
  t.is(
    codeOf(() =>
      parseCertificates('-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n'),
    ),
    'E_CERT_MALFORMED',
  );
  t.is(
    codeOf(() => parseCertificates('hello')),
    'E_CERT_MALFORMED',
  );
  t.is(
    codeOf(() => parseCertificates(p.peer.cert.der.subarray(0, 100))),
    'E_CERT_MALFORMED',
  );
  t.is(
    codeOf(() => parseCertificates(new Uint8Array(70_000).fill(0x30))),
    'E_TOO_LARGE',
  );
  t.is(
    codeOf(() => verifyChain([], { anchors: [p.root.cert] })),
    'E_CHAIN_EMPTY',
  );
});

test('private keys are written 0600, read back, and group/other-readable keys are refused', async (t) => {
  const dir = await tempDir(t);
  const key = generateSigningKey('ml-dsa-65');
  const path = join(dir, 'k.key');
  await writePrivateKey(path, key);
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.is((await readPrivateKey(path)).algorithm, 'ml-dsa-65');
  await chmod(path, 0o640);
  t.is(await codeOfAsync(() => readPrivateKey(path)), 'E_KEY_PERMISSIONS');
  const bad = join(dir, 'bad.key');
  await writeFile(bad, 'not a key', { mode: 0o600 });
  t.is(await codeOfAsync(() => readPrivateKey(bad)), 'E_KEY_MALFORMED');
});

test('passphrase-encrypted keys need the right passphrase', async (t) => {
  const dir = await tempDir(t);
  const key = generateSigningKey('ml-dsa-44');
  const path = join(dir, 'enc.key');
  await writePrivateKey(path, key, { passphrase: 'correct horse' });
  t.regex(await readFile(path, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  t.is((await readPrivateKey(path, { passphrase: 'correct horse' })).algorithm, 'ml-dsa-44');
  t.is(await codeOfAsync(() => readPrivateKey(path, { passphrase: 'wrong' })), 'E_KEY_PASSPHRASE');
});

test('a DER certificate handed over as a Buffer view into a larger buffer parses to the same certificate', async (t) => {
  const p = await pki;
  const der = p.peer.cert.der;
  // What readFile or a socket gives: a Buffer whose ArrayBuffer holds other bytes around it.
  const pool = Buffer.alloc(der.length + 300, 0x5a);
  Buffer.from(der).copy(pool, 100);
  const view = pool.subarray(100, 100 + der.length);
  const [c] = parseCertificates(view);
  t.is(c?.fingerprint, p.peer.cert.fingerprint);
  t.is(c?.subject, p.peer.cert.subject);
  t.deepEqual(c?.der, p.peer.cert.der);
  const pemView = Buffer.concat([Buffer.alloc(50, 0x20), Buffer.from(p.peer.cert.pem)]).subarray(50);
  t.is(parseCertificates(pemView)[0]?.fingerprint, p.peer.cert.fingerprint);
});

test('a changed byte is never served from the parse cache', async (t) => {
  const p = await pki;
  t.is(parseCertificates(p.peer.cert.der)[0], parseCertificates(new Uint8Array(p.peer.cert.der))[0]);
  const bad = new Uint8Array(p.peer.cert.der);
  bad[bad.length - 10] = (bad[bad.length - 10] ?? 0) ^ 1; // in the signature: still parses
  const [c] = parseCertificates(bad);
  t.not(c?.fingerprint, p.peer.cert.fingerprint);
  t.false(
    new X509Certificate(c?.der ?? new Uint8Array()).verify(new X509Certificate(p.root.cert.der).publicKey),
  );
});
