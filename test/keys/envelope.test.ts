import test from 'ava';
import {
  canonicalJson,
  signDetached,
  signEnvelope,
  verifyDetached,
  verifyEnvelope,
} from '../../keys/index.ts';
import { codeOf, makePki } from './fixture.ts';

const pki = makePki();

test('an attached envelope verifies and returns payload and signer', async (t) => {
  const p = await pki;
  const env = signEnvelope({
    type: 'command',
    payload: { action: 'restart', group: 'web' },
    key: p.operator.key,
    chain: p.operator.chain,
  });
  const text = new TextDecoder().decode(canonicalJson(env));
  const r = verifyEnvelope(text, { type: 'command', anchors: [p.root.cert] });
  t.deepEqual(r.payload, { action: 'restart', group: 'web' });
  t.is(r.signer.fingerprint, p.operator.cert.fingerprint);
});

test('noble-signed envelopes verify with node and node-signed with noble', async (t) => {
  const p = await pki;
  const a = signEnvelope({
    type: 'result',
    payload: 1,
    key: p.peer.key,
    chain: p.peer.chain,
    backend: 'noble',
  });
  t.is(verifyEnvelope(a, { type: 'result', anchors: [p.root.cert], backend: 'node' }).payload, 1);
  const b = signEnvelope({
    type: 'result',
    payload: 2,
    key: p.peer.key,
    chain: p.peer.chain,
    backend: 'node',
  });
  t.is(verifyEnvelope(b, { type: 'result', anchors: [p.root.cert], backend: 'noble' }).payload, 2);
});

test('countersigned envelopes need every signature to verify', async (t) => {
  const p = await pki;
  const one = signEnvelope({ type: 'file', payload: 'x', key: p.operator.key, chain: p.operator.chain });
  const two = signEnvelope({
    type: 'file',
    payload: 'x',
    key: p.peer.key,
    chain: p.peer.chain,
    envelope: one,
  });
  t.is(verifyEnvelope(two, { type: 'file', anchors: [p.root.cert] }).signers.length, 2);
  const bad = structuredClone(two);
  const s1 = bad.signatures[1];
  if (s1 === undefined) throw new Error('no countersignature');
  s1.sig = one.signatures[0]?.sig ?? '';
  t.is(
    codeOf(() => verifyEnvelope(bad, { type: 'file', anchors: [p.root.cert] })),
    'E_SIG_INVALID',
  );
});

test('a role signing outside its table is refused when signing and when verifying', async (t) => {
  const p = await pki;
  t.is(
    codeOf(() => signEnvelope({ type: 'command', payload: 1, key: p.peer.key, chain: p.peer.chain })),
    'E_ROLE_MAY_NOT_SIGN',
  );
  t.is(
    codeOf(() => signEnvelope({ type: 'layer', payload: 1, key: p.broker.key, chain: p.broker.chain })),
    'E_ROLE_MAY_NOT_SIGN',
  );
  // A peer "result" presented as a "status" and as a "command": the type check, then the role table.
  const env = signEnvelope({ type: 'result', payload: 1, key: p.peer.key, chain: p.peer.chain });
  t.is(
    codeOf(() => verifyEnvelope(env, { type: 'status', anchors: [p.root.cert] })),
    'E_ENVELOPE_TYPE',
  );
  const relabelled = { ...env, type: 'command' as const };
  t.is(
    codeOf(() => verifyEnvelope(relabelled, { type: 'command', anchors: [p.root.cert] })),
    'E_ROLE_MAY_NOT_SIGN',
  );
  // Same role, other type: the context string and bound type make the signature fail.
  const asStatus = { ...env, type: 'status' as const };
  t.is(
    codeOf(() => verifyEnvelope(asStatus, { type: 'status', anchors: [p.root.cert] })),
    'E_SIG_INVALID',
  );
});

test('every single byte of a small envelope flipped in turn makes verification fail', async (t) => {
  const p = await pki;
  // Fingerprint-only signature keeps the envelope small (the chain is looked up), ML-DSA-65.
  const env = signEnvelope({
    type: 'status',
    payload: { up: true },
    key: p.peer.key,
    chain: p.peer.chain,
    fingerprintOnly: true,
  });
  const bytes = canonicalJson(env);
  const options = { type: 'status' as const, anchors: [p.root.cert], certificates: p.peer.chain };
  t.deepEqual(verifyEnvelope(bytes, options).payload, { up: true });
  const codes = new Map<string, number>();
  for (let i = 0; i < bytes.length; i++) {
    const copy = new Uint8Array(bytes);
    copy[i] = (copy[i] ?? 0) ^ 0x01;
    const code = codeOf(() => verifyEnvelope(copy, options));
    t.not(code, 'no error', `byte ${i} flipped still verifies`);
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  t.log(`${bytes.length} flips:`, Object.fromEntries(codes));
  t.true(codes.has('E_SIG_INVALID'));
});

test('truncated, oversized, malformed and unknown-algorithm envelopes fail with their own codes', async (t) => {
  const p = await pki;
  const env = signEnvelope({ type: 'file', payload: 'x', key: p.peer.key, chain: p.peer.chain });
  const bytes = canonicalJson(env);
  const o = { type: 'file' as const, anchors: [p.root.cert] };
  t.is(
    codeOf(() => verifyEnvelope(bytes.subarray(0, bytes.length - 10), o)),
    'E_ENVELOPE_MALFORMED',
  );
  t.is(
    codeOf(() => verifyEnvelope(new Uint8Array(17 * 1024 * 1024), o)),
    'E_TOO_LARGE',
  );
  t.is(
    codeOf(() => verifyEnvelope('[]', o)),
    'E_ENVELOPE_MALFORMED',
  );
  const alg = structuredClone(env);
  (alg.signatures[0] as { alg: string }).alg = 'rsa-pss';
  t.is(
    codeOf(() => verifyEnvelope(alg, o)),
    'E_ALG_UNKNOWN',
  );
  const noSigs = { ...env, signatures: [] };
  t.is(
    codeOf(() => verifyEnvelope(noSigs, o)),
    'E_ENVELOPE_MALFORMED',
  );
  const unknownType = { ...env, type: 'firmware' };
  t.is(
    codeOf(() => verifyEnvelope(JSON.stringify(unknownType), o)),
    'E_ENVELOPE_TYPE',
  );
  t.is(
    codeOf(() => verifyEnvelope(env, { type: 'file', anchors: [p.vendorRoot.cert] })),
    'E_CERT_UNTRUSTED',
  );
});

test('detached signatures bind the data, type and signer', async (t) => {
  const p = await pki;
  const data = new TextEncoder().encode('layer manifest bytes');
  const sig = signDetached({ type: 'layer', data, key: p.vendor.key, chain: p.vendor.chain });
  t.is(verifyDetached(data, sig, { type: 'layer', anchors: [p.vendorRoot.cert] }).role, 'vendor');
  t.is(
    verifyDetached(data, canonicalJson(sig), { type: 'layer', anchors: [p.vendorRoot.cert] }).role,
    'vendor',
  );
  // The same object in another spelling (key order, spacing) is bytes no signature covers.
  t.is(
    codeOf(() => verifyDetached(data, JSON.stringify(sig), { type: 'layer', anchors: [p.vendorRoot.cert] })),
    'E_ENVELOPE_NOT_CANONICAL',
  );
  const other = new TextEncoder().encode('layer manifest bytez');
  t.is(
    codeOf(() => verifyDetached(other, sig, { type: 'layer', anchors: [p.vendorRoot.cert] })),
    'E_SIG_INVALID',
  );
  t.is(
    codeOf(() => verifyDetached(data, sig, { type: 'config', anchors: [p.vendorRoot.cert] })),
    'E_SIG_INVALID',
  );
  t.is(
    codeOf(() =>
      verifyDetached(
        data,
        { ...sig, created: '2020-01-01T00:00:00.000Z' },
        { type: 'layer', anchors: [p.vendorRoot.cert] },
      ),
    ),
    'E_SIG_INVALID',
  );
});
