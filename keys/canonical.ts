// Canonical bytes of JSON values: RFC 8785 (JSON Canonicalization Scheme). `canonicalize` (npm)
// is the reference; a fast path gives the same text for the values that dominate the hot paths
// (envelopes and audit entries as JSON.parse returns them) with one native JSON.stringify.
import canonicalize from 'canonicalize';
import { KeysError } from './errors.ts';

/** The fast path gives up (and the reference decides) on any value it is not sure of. */
const UNSURE = Symbol('unsure');
/** Deeper values go to the reference, which walks iteratively: no recursion on attacker depth. */
const MAX_FAST_DEPTH = 48;
/** An array index as a property name: JS enumerates those first, whatever the insertion order. */
const INDEX_KEY = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * A copy of `v` whose objects have their keys inserted in RFC 8785 order (UTF-16 code units, as
 * Array.prototype.sort), so JSON.stringify writes the canonical text; UNSURE for anything where
 * JSON.stringify and the scheme could differ: a number that is not finite, undefined, a
 * function, symbol or bigint, a toJSON method, a boxed primitive, a non-plain object, an
 * array-index key or `__proto__`, an array hole, or nesting deeper than MAX_FAST_DEPTH.
 */
function sortedCopy(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : UNSURE;
  if (typeof v !== 'object' || depth > MAX_FAST_DEPTH) return UNSURE;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) return UNSURE;
      const c = sortedCopy(v[i], depth + 1);
      if (c === UNSURE) return UNSURE;
      out[i] = c;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return UNSURE;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return UNSURE;
  const keys = Object.keys(v).sort();
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    // `out.__proto__ = …` would set the prototype, not a member.
    if (INDEX_KEY.test(k) || k === '__proto__') return UNSURE;
    const c = sortedCopy((v as Record<string, unknown>)[k], depth + 1);
    if (c === UNSURE) return UNSURE;
    out[k] = c;
  }
  return out;
}

function reference(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (e) {
    throw new KeysError('E_CANONICAL', `Value cannot be canonicalized (RFC 8785): ${(e as Error).message}`);
  }
  if (text === undefined)
    throw new KeysError('E_CANONICAL', 'Value cannot be canonicalized (RFC 8785): undefined');
  return text;
}

/**
 * The RFC 8785 text of `value`. The fast path is exact where it answers: keys in code-unit
 * order, numbers as ECMAScript writes them (what the scheme specifies, and JSON.stringify's own
 * form), strings escaped as JSON.stringify does, which is the scheme's escaping — except for a
 * lone surrogate, which the scheme refuses and JSON.stringify writes as `\udXXX`: any `\ud` in
 * the text (also a literal backslash before `ud`, harmlessly) sends the value to the reference.
 */
export function canonicalText(value: unknown): string {
  const copy = sortedCopy(value, 0);
  if (copy !== UNSURE) {
    const text = JSON.stringify(copy);
    if (!text.includes('\\ud')) return text;
  }
  return reference(value);
}

export function canonicalJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalText(value));
}
