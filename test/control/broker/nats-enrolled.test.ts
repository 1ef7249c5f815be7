// NATS users derived from accepted enrollments (control/broker/nats-enrolled.ts): an nkey is
// admitted only with its request's ML-DSA signature, a certificate for that request's keys that
// chains to the anchors and is the peer's current one; a database that lies adds nobody.
import { createPublicKey } from 'node:crypto';
import test from 'ava';
import { enrolledNatsUsers, withEnrolled } from '../../../control/broker/nats-enrolled.ts';
import type { EnrollmentRow, PeerRow } from '../../../control/broker/broker-db.ts';
import {
  checkEnrollmentRequest,
  createEnrollmentRequest,
  keyFingerprint,
  newNkeySeed,
  nkeyPublicKey,
} from '../../../control/wire/index.ts';
import {
  certificatePem,
  generateKemKey,
  generateSigningKey,
  issueCertificate,
  rawPublicKey,
} from '../../../keys/index.ts';
import { makeFleetPki } from '../command-fixture.ts';

const pkiP = makeFleetPki();

async function enrolled(peerId: string, o: { natsKey?: boolean } = {}) {
  const p = await pkiP;
  const key = generateSigningKey('ml-dsa-65');
  const kem = rawPublicKey(createPublicKey(generateKemKey().privateKey));
  const natsKey = await nkeyPublicKey(await newNkeySeed());
  const request = createEnrollmentRequest({
    key,
    kemPublicKey: kem,
    peerId: 'asked',
    ...(o.natsKey === false ? {} : { natsKey }),
  });
  const cert = await issueCertificate({
    role: 'peer',
    name: peerId,
    subjectKey: key,
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    peerId,
    kemPublicKey: kem,
  });
  const fp = keyFingerprint(rawPublicKey(key.publicKey));
  const row: EnrollmentRow = {
    requestId: fp.slice(0, 32),
    peerId: 'asked',
    name: 'asked',
    fingerprint: fp,
    labels: {},
    request,
    state: 'accepted',
    certificate: certificatePem(cert.der) + certificatePem(p.root.cert.der),
    created: new Date().toISOString(),
  };
  const peer: PeerRow = {
    peerId,
    name: peerId,
    fingerprint: cert.fingerprint,
    certificate: certificatePem(cert.der),
    labels: {},
    lastSeen: null,
    status: null,
    created: row.created,
  };
  return { row, peer, natsKey };
}

test('enrolledNatsUsers() admits the nkey of a verified accepted request under its certificate’s peer id', async (t) => {
  const p = await pkiP;
  const a = await enrolled('web-1');
  const b = await enrolled('web-2', { natsKey: false });
  const r = enrolledNatsUsers([a.row, b.row], [a.peer, b.peer], { anchors: [p.root.cert] });
  t.deepEqual(r.peers, { 'web-1': a.natsKey }, 'a request without natsKey adds nobody');
  t.deepEqual(r.skipped, []);
  // Pending and rejected requests add nobody either.
  for (const state of ['pending', 'rejected'] as const)
    t.deepEqual(enrolledNatsUsers([{ ...a.row, state }], [a.peer], { anchors: [p.root.cert] }).peers, {});
});

test('enrolledNatsUsers() leaves out what a lying database or a foreign anchor makes unverifiable', async (t) => {
  const p = await pkiP;
  const a = await enrolled('web-1');
  const other = await enrolled('web-9');
  const swapped = await nkeyPublicKey(await newNkeySeed());
  const req = a.row.request as { payload: Record<string, unknown> };
  const cases: Array<[string, EnrollmentRow[], PeerRow[], RegExp]> = [
    // Another nkey written into the stored request: its signature no longer verifies.
    [
      'tampered',
      [{ ...a.row, request: { ...req, payload: { ...req.payload, natsKey: swapped } } }],
      [a.peer],
      /signature does not verify/,
    ],
    // A certificate for other keys filed with the request.
    ['other cert', [{ ...a.row, certificate: other.row.certificate }], [a.peer, other.peer], /another key/],
    // The peer holds another certificate now (a reinstall replaced it).
    ['replaced', [a.row], [{ ...a.peer, fingerprint: '0'.repeat(64) }], /holds another certificate now/],
  ];
  for (const [what, rows, peers, reason] of cases) {
    const r = enrolledNatsUsers(rows, peers, { anchors: [p.root.cert] });
    t.deepEqual(r.peers, {}, what);
    t.regex(r.skipped[0]?.reason ?? '', reason, what);
  }
  // A foreign root as the only anchor: the chain fails.
  const foreign = enrolledNatsUsers([a.row], [a.peer], { anchors: [p.foreignOp.cert] });
  t.deepEqual(foreign.peers, {});
  t.is(foreign.skipped[0]?.peerId, 'web-1', 'named by the certificate’s id');
});

test('an enrollment request whose natsKey is not an nkey user public key is E_ENROLL_INVALID', (t) => {
  const key = generateSigningKey('ml-dsa-65');
  const kem = rawPublicKey(createPublicKey(generateKemKey().privateKey));
  for (const natsKey of ['nope', `S${'A'.repeat(55)}`, `U${'a'.repeat(55)}`]) {
    const r = createEnrollmentRequest({ key, kemPublicKey: kem, peerId: 'x', natsKey });
    const e = t.throws(() => checkEnrollmentRequest(r));
    t.is((e as { code?: string }).code, 'E_ENROLL_INVALID', natsKey);
    t.regex(e?.message ?? '', /natsKey/);
  }
});

test('withEnrolled() adds enrolled peers to the users file and refuses one given two keys', async (t) => {
  const base = { broker: 'U'.padEnd(56, 'A'), peers: { 'web-1': 'U'.padEnd(56, 'B') }, auditors: {} };
  t.deepEqual(withEnrolled(base, { peers: { 'web-2': 'U'.padEnd(56, 'C') }, skipped: [] }).peers, {
    'web-1': 'U'.padEnd(56, 'B'),
    'web-2': 'U'.padEnd(56, 'C'),
  });
  t.deepEqual(withEnrolled(base, { peers: { 'web-1': 'U'.padEnd(56, 'B') }, skipped: [] }).peers, base.peers);
  const e = t.throws(() => withEnrolled(base, { peers: { 'web-1': 'U'.padEnd(56, 'D') }, skipped: [] }));
  t.is((e as { code?: string }).code, 'E_CONFIG');
});
