// keys/x509-fast.ts reads a certificate's fields from its DER bytes and leaves anything outside
// the profile's encodings to the asn1js reader (asn1Fields). The two must never disagree: on
// every issued certificate the fast reader answers and reads the same fields; on thousands of
// damaged copies (bytes changed where names, times, extensions and lengths are) that OpenSSL still
// parses and that are strict DER, whenever the fast reader answers, asn1js reads the same fields
// and refuses nothing it accepted. x509-parse.test.ts checks the fields against @peculiar/x509 and
// openssl.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { generateKemKey, generateSigningKey } from '../../keys/algorithms.ts';
import { asn1Fields, FAST_OIDS } from '../../keys/certificate.ts';
import { assertStrictDer } from '../../keys/der.ts';
import { issueCertificate, parseCertificates, rawPublicKey } from '../../keys/index.ts';
import { OID_ALGORITHMS, PEER_URI_PREFIX } from '../../keys/oids.ts';
import { ROLES } from '../../keys/types.ts';
import { childrenOf, fastFields } from '../../keys/x509-fast.ts';
import { makePki } from './fixture.ts';

const fast = (der: Uint8Array) => fastFields(der, FAST_OIDS, PEER_URI_PREFIX);
const slow = (der: Uint8Array) =>
  asn1Fields(der, (m) => {
    throw new Error(m);
  });

async function certificates() {
  const p = await makePki();
  const rootKey = generateSigningKey('ml-dsa-65');
  const root = await issueCertificate({
    role: 'user-root',
    name: 'r.oot_1',
    subjectKey: rootKey,
    days: 36500,
  });
  const extra = [
    root,
    // A KEM key, several DNS names, a scope and a validity past 2049 (GeneralizedTime).
    await issueCertificate({
      role: 'peer',
      name: 'peer-9',
      peerId: 'peer-9',
      subjectKey: generateSigningKey('ml-dsa-65'),
      kemPublicKey: rawPublicKey(generateKemKey().publicKey),
      dnsNames: ['a.example', 'b.example'],
      issuerKey: rootKey,
      issuerCert: root,
      days: 36500,
    }),
    await issueCertificate({
      role: 'operator',
      name: 'op',
      groups: ['web', 'db'],
      actions: ['*'],
      subjectKey: generateSigningKey('ml-dsa-65'),
      issuerKey: rootKey,
      issuerCert: root,
      days: 1,
    }),
  ];
  return [
    ...[p.root, p.peer, p.operator, p.broker, p.vendorRoot, p.vendor, p.peerIssuer, p.issuedPeer].map(
      (i) => i.cert,
    ),
    ...extra,
  ];
}

test('every issued certificate is read by the fast reader, field for field as asn1js reads it', async (t) => {
  for (const c of await certificates()) {
    const f = fast(c.der);
    t.not(f, undefined, c.subject);
    t.deepEqual(f, slow(c.der), c.subject);
    // And parseCertificates' result (fast reader) has what asn1js read.
    const parsed = parseCertificates(c.der)[0];
    t.is(parsed?.subject, f?.subject);
    t.is(parsed?.peerId, f?.peerId);
  }
});

/** A repeatable pseudo-random sequence (xorshift32), so a failure names its case. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Byte ranges outside the big key and signature bytes: the header, names, validity, extensions. */
function interesting(der: Uint8Array): Array<[number, number]> {
  const top = childrenOf(der, { tag: 0x30, start: 4, end: der.length });
  const tbs = top[0] as { start: number; end: number };
  const fields = childrenOf(der, { tag: 0x30, ...tbs });
  const spki = fields.find((f, i) => i > 3 && f.tag === 0x30 && f.end - f.start > 1000);
  const ranges: Array<[number, number]> = [[0, spki === undefined ? 200 : spki.start + 30]];
  if (spki !== undefined) ranges.push([spki.end - 4, tbs.end]);
  return ranges;
}

test('damaged certificates: whenever the fast reader answers, asn1js accepts them and reads the same', async (t) => {
  t.timeout(120_000);
  const next = rng(0x5eed);
  let tried = 0;
  let answered = 0;
  let leftToAsn1 = 0;
  for (const c of await certificates()) {
    const ranges = interesting(c.der);
    for (let k = 0; k < 600; k++) {
      const der = new Uint8Array(c.der);
      const [from, to] = ranges[Math.floor(next() * ranges.length)] as [number, number];
      const at = from + Math.floor(next() * (to - from));
      const r = next();
      // A changed bit, a changed byte, or a small step (tags, lengths, digits, booleans).
      if (r < 0.4) der[at] = (der[at] as number) ^ (1 << Math.floor(next() * 8));
      else if (r < 0.7) der[at] = Math.floor(next() * 256);
      else der[at] = ((der[at] as number) + (next() < 0.5 ? 1 : 255)) & 0xff;
      // Only what reaches the readers: parseCertificateDer checks strict DER and OpenSSL's parse first.
      try {
        assertStrictDer(der, 'E_CERT_MALFORMED', 'c');
        new X509Certificate(Buffer.from(der));
      } catch {
        continue;
      }
      tried++;
      const f = fast(der);
      if (f === undefined) {
        leftToAsn1++;
        continue;
      }
      answered++;
      let s: unknown;
      try {
        s = slow(der);
      } catch (e) {
        // decodeFields refuses these after either reader (the role's and the key's checks).
        if (!(ROLES as readonly string[]).includes(f.role) || OID_ALGORITHMS[f.spkiOid] === undefined)
          continue;
        t.fail(`${c.subject} byte ${at}: fast reader accepted what asn1js refuses: ${(e as Error).message}`);
        continue;
      }
      t.deepEqual(f, s, `${c.subject} byte ${at}`);
    }
  }
  t.log(
    `${tried} damaged certificates parsed by OpenSSL: ${answered} read fast, ${leftToAsn1} left to asn1js`,
  );
  t.true(answered > 100, 'the damage left many certificates readable');
  t.true(leftToAsn1 > 10, 'and sent some to asn1js');
});
