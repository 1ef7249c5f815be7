// Peer-signed results: bound to the command id and digest, signed by the peer they name;
// a revoked peer's results are refused with their own code.
import test from 'ava';
import { buildCommand, envelopeDigest } from '../../../control/wire/command.ts';
import {
  type ResultPayload,
  signResult,
  signStatus,
  verifyResult,
  verifyStatus,
} from '../../../control/wire/result.ts';
import { codeOf, makeFleetPki } from '../command-fixture.ts';

const pkiP = makeFleetPki();

async function setup() {
  const p = await pkiP;
  const command = buildCommand({
    action: 'status',
    audience: { fleet: 'prod', target: 'all', groups: [], peers: ['p1', 'p9'] },
    seq: 3,
    key: p.admin.key,
    chain: p.admin.chain,
  });
  const id = (command.payload as { id: string }).id;
  const digest = envelopeDigest(command);
  const now = new Date().toISOString();
  const payload = (peer: string): ResultPayload => ({
    v: 1,
    command: id,
    commandDigest: digest,
    peer,
    status: 'ok',
    output: { state: 'running' },
    startedAt: now,
    finishedAt: now,
  });
  return { p, id, digest, payload };
}

test('a result verifies for the command it answers', async (t) => {
  const { p, id, digest, payload } = await setup();
  const r = signResult(payload('p1'), p.p1.key, p.p1.chain);
  const v = verifyResult(r, {
    anchors: [p.root.cert],
    crls: [p.crl],
    expect: { command: id, commandDigest: digest },
  });
  t.deepEqual(v.payload.output, { state: 'running' });
  t.is(v.signer.peerId, 'p1');
});

test('a result pinned on another command is refused with E_RESULT_BINDING', async (t) => {
  const { p, id, payload } = await setup();
  const r = signResult(payload('p1'), p.p1.key, p.p1.chain);
  const o = { anchors: [p.root.cert], expect: { command: id, commandDigest: '0'.repeat(64) } };
  t.is(
    codeOf(() => verifyResult(r, o)),
    'E_RESULT_BINDING',
  );
});

test('a result claiming another peer is refused with E_RESULT_PEER', async (t) => {
  const { p, payload } = await setup();
  const r = signResult(payload('p2'), p.p1.key, p.p1.chain);
  t.is(
    codeOf(() => verifyResult(r, { anchors: [p.root.cert] })),
    'E_RESULT_PEER',
  );
});

test('a result from a revoked peer is refused with E_RESULT_PEER_REVOKED', async (t) => {
  const { p, payload } = await setup();
  const r = signResult(payload('p9'), p.revokedPeer.key, p.revokedPeer.chain);
  t.is(
    codeOf(() => verifyResult(r, { anchors: [p.root.cert], crls: [p.crl] })),
    'E_RESULT_PEER_REVOKED',
  );
  t.is(
    codeOf(() => verifyResult(r, { anchors: [p.root.cert], crls: [] })),
    'no error',
  );
});

test('a tampered result is refused with E_RESULT_SIGNATURE', async (t) => {
  const { p, payload } = await setup();
  const r = signResult(payload('p1'), p.p1.key, p.p1.chain);
  const tampered = { ...r, payload: { ...(r.payload as object), status: 'failed' } };
  t.is(
    codeOf(() => verifyResult(tampered, { anchors: [p.root.cert] })),
    'E_RESULT_SIGNATURE',
  );
});

test('status is signed by the peer it names', async (t) => {
  const p = await pkiP;
  const s = signStatus(
    {
      v: 1,
      peer: 'p1',
      fleet: 'prod',
      at: new Date().toISOString(),
      agent: {},
      layers: [],
      services: [],
      groups: ['web'],
    },
    p.p1.key,
    p.p1.chain,
  );
  t.is(verifyStatus(s, { anchors: [p.root.cert] }).payload.peer, 'p1');
  const lying = signStatus(
    {
      v: 1,
      peer: 'p2',
      fleet: 'prod',
      at: new Date().toISOString(),
      agent: {},
      layers: [],
      services: [],
      groups: [],
    },
    p.p1.key,
    p.p1.chain,
  );
  t.is(
    codeOf(() => verifyStatus(lying, { anchors: [p.root.cert] })),
    'E_RESULT_PEER',
  );
});
