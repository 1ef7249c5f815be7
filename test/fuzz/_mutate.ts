// The mutation cases of one artifact, derived from its bytes and a seed only (so a runner
// restarted after a hang recomputes the same list): every byte flipped for small artifacts;
// for large ones every byte of the ranges that matter (headers, JSON framing, superblocks)
// plus a seeded sample of the rest; truncations at every structural boundary and a sample.

/** mulberry32: small, fast, and the same stream on every machine for a given seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type MutationCase =
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'append'; byte: number };

export interface CasePlan {
  /** Bytes up to this size get every byte flipped. */
  allUpTo?: number;
  /** Byte ranges [start, end) flipped in full even when the artifact is large. */
  focus?: readonly (readonly [number, number])[];
  /** Further positions sampled when the artifact is large. */
  sample?: number;
  /** Lengths where a truncation is interesting (structure boundaries). */
  boundaries?: readonly number[];
  /** Random truncation lengths added to the boundaries. */
  truncations?: number;
  /** Positions that may not be flipped at all (bytes nothing covers, documented). */
  skip?: (at: number) => boolean;
  /** Append one byte (skipped for disks, whose size is in sectors). */
  append?: boolean;
  /** Cases a quick run keeps (default QUICK_CASES): a seeded sample of the full list. */
  quick?: number;
}

/**
 * How deep a run goes. `quick` (npm test) keeps at most `plan.quick` cases of each artifact,
 * drawn by the seed from the full list (an artifact of up to QUICK_ALL_UP_TO bytes, or with
 * fewer cases, keeps all of them); `full` (npm run test:fuzz) runs every case.
 */
export type Depth = 'quick' | 'full';

export const QUICK_CASES = 250;
/** Artifacts up to this size keep every case even in a quick run (every byte of a small one). */
export const QUICK_ALL_UP_TO = 1024;

/** A string's hash, to give each artifact its own stream from one seed. */
function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function planCases(
  name: string,
  length: number,
  plan: CasePlan,
  seed: number,
  depth: Depth = 'full',
): MutationCase[] {
  const r = rng(seed ^ hashName(name));
  const mask = () => 1 + Math.floor(r() * 255);
  const at = new Set<number>();
  if (length <= (plan.allUpTo ?? 8192)) for (let i = 0; i < length; i++) at.add(i);
  else {
    for (const [s, e] of plan.focus ?? [])
      for (let i = Math.max(0, s); i < Math.min(length, e); i++) at.add(i);
    for (let k = 0; k < (plan.sample ?? 500); k++) at.add(Math.floor(r() * length));
  }
  const out: MutationCase[] = [];
  for (const i of [...at].sort((a, b) => a - b)) {
    if (plan.skip?.(i) === true) continue;
    out.push({ kind: 'flip', at: i, mask: mask() });
  }
  const cut = new Set<number>([0, 1, 2, length - 1, length - 2]);
  for (const b of plan.boundaries ?? []) for (const d of [-1, 0, 1]) cut.add(b + d);
  for (let k = 0; k < (plan.truncations ?? 64); k++) cut.add(Math.floor(r() * length));
  for (const n of [...cut].filter((n) => n >= 0 && n < length).sort((a, b) => a - b))
    out.push({ kind: 'truncate', length: n });
  if (plan.append !== false) out.push({ kind: 'append', byte: 0x58 });
  const keep = plan.quick ?? QUICK_CASES;
  if (depth === 'full' || length <= QUICK_ALL_UP_TO || out.length <= keep) return out;
  // A partial Fisher-Yates shuffle drawn from the same stream: the sample depends only on the
  // artifact's name, length and the seed, so a restarted runner draws the same one.
  const order = out.map((_, i) => i);
  for (let i = 0; i < keep; i++) {
    const j = i + Math.floor(r() * (order.length - i));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order
    .slice(0, keep)
    .sort((a, b) => a - b)
    .map((i) => out[i] as MutationCase);
}

export function applyCase(bytes: Uint8Array, c: MutationCase): Uint8Array {
  if (c.kind === 'truncate') return bytes.slice(0, c.length);
  if (c.kind === 'append') {
    const out = new Uint8Array(bytes.length + 1);
    out.set(bytes);
    out[bytes.length] = c.byte;
    return out;
  }
  const out = new Uint8Array(bytes);
  out[c.at] = (out[c.at] as number) ^ c.mask;
  return out;
}

export function describe(c: MutationCase): string {
  if (c.kind === 'flip') return `flip byte ${c.at} ^ 0x${c.mask.toString(16).padStart(2, '0')}`;
  if (c.kind === 'truncate') return `truncate to ${c.length} bytes`;
  return `append 0x${c.byte.toString(16)}`;
}

/** Ranges of a JSON text outside long base64 strings (the framing and every short value). */
export function jsonFraming(bytes: Uint8Array, longRun = 96): [number, number][] {
  const text = Buffer.from(bytes).toString('latin1');
  const out: [number, number][] = [];
  let start = 0;
  for (const m of text.matchAll(new RegExp(`[A-Za-z0-9+/=]{${longRun},}`, 'g'))) {
    const i = m.index ?? 0;
    // Keep a few bytes at each end of a long string: the quotes and the padding live there.
    out.push([start, i + 8]);
    start = i + (m[0] as string).length - 8;
  }
  out.push([start, bytes.length]);
  return out;
}

/** Offsets where a JSON text's structure changes (after each `{}[],:"`). */
export function jsonBoundaries(bytes: Uint8Array, max = 200): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length && out.length < max; i++)
    if ('{}[],:"'.includes(String.fromCharCode(bytes[i] as number))) out.push(i + 1);
  return out;
}

/** Offsets where DER values start and end (every TLV of the outer two levels). */
export function derBoundaries(der: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number) => {
    let p = start;
    while (p < end && out.length < 400) {
      out.push(p);
      const first = der[p + 1] ?? 0;
      let len = first;
      let hdr = 2;
      if (first & 0x80) {
        const n = first & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + (der[p + 2 + i] ?? 0);
        hdr = 2 + n;
      }
      if (depth < 2 && ((der[p] ?? 0) & 0x20) !== 0) walk(p + hdr, p + hdr + len, depth + 1);
      p += hdr + len;
      out.push(p);
    }
  };
  walk(0, der.length, 0);
  return out;
}

/**
 * Ranges of a DER value outside long opaque contents (keys, signatures): every tag, length and
 * short value in full, and the first and last 16 bytes of each primitive longer than 128 bytes.
 */
export function derFraming(der: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  const walk = (from: number, to: number, depth: number) => {
    let p = from;
    while (p < to && depth < 16) {
      const tag = der[p] ?? 0;
      const first = der[p + 1] ?? 0;
      let len = first;
      let hdr = 2;
      if (first & 0x80) {
        const n = first & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + (der[p + 2 + i] ?? 0);
        hdr = 2 + n;
      }
      const body = p + hdr;
      if ((tag & 0x20) !== 0) walk(body, body + len, depth + 1);
      else if (len > 128) {
        out.push([start, body + 16]);
        start = body + len - 16;
      }
      p = body + len;
    }
  };
  walk(0, der.length, 0);
  out.push([start, der.length]);
  return out;
}
