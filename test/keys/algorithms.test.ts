import test from 'ava';
import { generateSigningKey, sign, verify } from '../../keys/algorithms.ts';
import type { SignatureAlgorithm } from '../../keys/index.ts';
import { generateKemKey, kemDecapsulate, kemEncapsulate, rawPublicKey } from '../../keys/algorithms.ts';
import { codeOf } from './fixture.ts';

const msg = new TextEncoder().encode('milkyway test message');

for (const alg of ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87', 'slh-dsa-sha2-128s'] as SignatureAlgorithm[]) {
  test(`${alg}: node signatures verify with noble and noble signatures with node`, (t) => {
    const key = generateSigningKey(alg);
    const pub = rawPublicKey(key.publicKey);
    const byNode = sign(key, msg, 'milkyway/v1/file', 'node');
    t.true(verify(alg, pub, msg, byNode, 'milkyway/v1/file', 'noble'));
    t.true(verify(alg, key.publicKey, msg, byNode, 'milkyway/v1/file', 'node'));
    // SLH-DSA signing with noble takes seconds: one noble signature for it, in this test only.
    const byNoble = sign(key, msg, 'milkyway/v1/file', 'noble');
    t.true(verify(alg, key.publicKey, msg, byNoble, 'milkyway/v1/file', 'node'));
    t.true(verify(alg, pub, msg, byNoble, 'milkyway/v1/file', 'noble'));
  });
}

test('a signature made under one context string fails under another, on both backends', (t) => {
  const key = generateSigningKey('ml-dsa-65');
  for (const backend of ['node', 'noble'] as const) {
    const sig = sign(key, msg, 'milkyway/v1/layer', backend);
    t.true(verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/layer', 'node'));
    t.false(verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/config', 'node'));
    t.false(verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/config', 'noble'));
  }
});

test('a signature does not verify under another algorithm or key', (t) => {
  const a = generateSigningKey('ml-dsa-65');
  const b = generateSigningKey('ml-dsa-65');
  const sig = sign(a, msg, 'c');
  t.false(verify('ml-dsa-65', b.publicKey, msg, sig, 'c'));
  t.false(verify('ml-dsa-87', a.publicKey, msg, sig, 'c'));
});

test('unknown algorithm names are refused with E_ALG_UNKNOWN', (t) => {
  t.is(
    codeOf(() => generateSigningKey('rsa-2048' as SignatureAlgorithm)),
    'E_ALG_UNKNOWN',
  );
});

test('ML-KEM-768 shared secrets agree across node and noble', (t) => {
  const kem = generateKemKey();
  const pub = rawPublicKey(kem.publicKey);
  for (const enc of ['node', 'noble'] as const) {
    for (const dec of ['node', 'noble'] as const) {
      const { sharedSecret, ciphertext } = kemEncapsulate(pub, enc);
      t.deepEqual(kemDecapsulate(kem.privateKey, ciphertext, dec), sharedSecret, `${enc} -> ${dec}`);
    }
  }
});
