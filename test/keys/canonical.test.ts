// keys/canonical.ts's fast path against the reference it stands in for, `canonicalize` (npm,
// RFC 8785): random JSON values as JSON.parse returns them (nested objects and arrays, keys and
// strings with escapes, astral and lone surrogates, array-index keys, numbers of every form),
// real envelopes, and the values the fast path must hand back (toJSON, NaN, undefined, depth).
// Every answer must be the reference's text, or the reference's refusal.
import test from 'ava';
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { canonicalJson, canonicalText } from '../../keys/index.ts';
import { entryHash, entryHashOf, GENESIS } from '../../control/wire/index.ts';
import { makePki } from './fixture.ts';
import { signEnvelope } from '../../keys/index.ts';

/** xorshift32: the same values on every run. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const PIECES = [
  'a',
  'Z',
  'é',
  '\u20ac',
  '\ud83d\ude00',
  '\ud800',
  '\udfff',
  '"',
  '\\',
  '\n',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u2028',
  '0',
  '10',
  '9',
  '__proto__',
  ' ',
  '\\ud',
];

function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)] as string;
  return s;
}

const NUMBERS = [0, -0, 1, -1, 1.5, 1e21, 1e-7, 123456789012345680000, 5e-324, 2 ** 53, 0.1 + 0.2, -1e308];

function randomValue(r: () => number, depth: number): unknown {
  const k = r();
  if (depth > 4 || k < 0.35) {
    const p = r();
    if (p < 0.4) return randomString(r);
    if (p < 0.7) return NUMBERS[Math.floor(r() * NUMBERS.length)];
    if (p < 0.85) return r() < 0.5;
    return null;
  }
  if (k < 0.6) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[randomString(r)] = randomValue(r, depth + 1);
  return o;
}

function reference(v: unknown): string {
  try {
    return String(canonicalize(v));
  } catch {
    return 'refused';
  }
}

function ours(v: unknown): string {
  try {
    return canonicalText(v);
  } catch (e) {
    if ((e as { code?: string }).code !== 'E_CANONICAL') throw e;
    return 'refused';
  }
}

test('canonicalText() is the reference text (or its refusal) for 20,000 random JSON values', (t) => {
  const r = rng(0x5eed);
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    // As the broker gets them: parsed from JSON text (JSON.stringify writes lone surrogates escaped).
    const v = JSON.parse(JSON.stringify(randomValue(r, 0)) ?? 'null') as unknown;
    const want = reference(v);
    if (want === 'refused') refused++;
    if (ours(v) !== want) {
      t.fail(`value ${JSON.stringify(v)}: ${ours(v)} vs ${want}`);
      return;
    }
  }
  t.true(refused > 100, `lone surrogates were drawn and refused (${refused})`);
});

test('canonicalText() hands what it is unsure of to the reference, which decides', (t) => {
  const deep: unknown[] = [];
  let cur = deep;
  for (let i = 0; i < 10_000; i++) {
    const next: unknown[] = [];
    cur.push(next);
    cur = next;
  }
  const proto = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as unknown;
  const sparse: unknown[] = [1];
  sparse[2] = 3; // a hole at 1
  for (const [i, v] of [
    { a: new Date(0), b: 1 },
    { n: Number.NaN },
    { n: Number.POSITIVE_INFINITY },
    { u: undefined, a: 1 },
    [undefined],
    sparse,
    { 10: 'a', 9: 'b', x: 1 },
    proto,
    Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
    { s: 'lone \ud800 surrogate' },
    { '\udc00': 1 },
    { s: 'a literal \\ud800 is fine' },
    deep,
  ].entries()) {
    t.is(ours(v), reference(v), `case ${i}`);
  }
});

test('canonicalJson() of a real signed envelope is the reference bytes', async (t) => {
  const p = await makePki();
  const env = signEnvelope({
    type: 'file',
    payload: { b: [1, 2, { z: 'é', a: null }], a: 'x' },
    key: p.peer.key,
    chain: p.peer.chain,
  });
  const parsed = JSON.parse(JSON.stringify(env)) as unknown;
  t.deepEqual(Buffer.from(canonicalJson(parsed)), Buffer.from(String(canonicalize(parsed))));
});

test('entryHashOf() with the canonical text of data is entryHash(), and both are sha256 of the reference text', (t) => {
  const r = rng(7);
  for (let i = 0; i < 500; i++) {
    const data = JSON.parse(JSON.stringify(randomValue(r, 0)) ?? 'null') as unknown;
    if (reference(data) === 'refused') continue;
    const e = {
      seq: i + 1,
      time: new Date(i * 1000).toISOString(),
      kind: 'result',
      actor: `peer:${randomString(r) || 'x'}`,
      data,
      prev: GENESIS,
    };
    const want = reference({ ...e });
    if (want === 'refused') continue;
    const sha = createHash('sha256').update(want, 'utf8').digest('hex');
    t.is(entryHash(e), sha);
    t.is(entryHashOf(e, canonicalText(data)), sha);
  }
});
