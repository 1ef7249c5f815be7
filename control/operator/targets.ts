// Target expressions, batches and failure budgets for fleet commands (doc/commands.md,
// "Targeting"). An expression is a comma-separated union of terms, each optionally negated
// with `!`: `all`, `group:NAME`, `peer:ID`, `label:KEY=VALUE`, `fact:PATH<OP>VALUE`, `addr:IP` and
// `net:CIDR` (addresses from the peers' signed facts), or a glob
// on peer ids (`web-*`); ` and ` (or `&`) joins terms into an intersection. Resolution runs on the operator's side against the broker's peer list; the
// peers re-check membership themselves, so a wrong list can only make them refuse.
import { BlockList, isIP } from 'node:net';
import { usageError } from './operator-error.ts';
import { OperatorError } from './operator-error.ts';

export interface FleetPeer {
  id: string;
  groups: string[];
  labels?: Record<string, string>;
  online?: boolean;
  /** Facts from the peer's signed status, verified by the caller (only for `fact:` terms). */
  facts?: Record<string, unknown> | undefined;
}

type Factor =
  | { kind: 'all'; not: boolean }
  | { kind: 'group'; name: string; not: boolean }
  | { kind: 'peer'; name: string; not: boolean }
  | { kind: 'label'; key: string; value: string; not: boolean }
  | { kind: 'fact'; path: string[]; op: FactOp; value: string; not: boolean }
  | { kind: 'glob'; pattern: RegExp; text: string; not: boolean }
  | { kind: 'net'; text: string; block: BlockList; not: boolean };

/** One comma-separated part: a factor, and the factors ANDed to it (`group:web and fact:arch=x86_64`). */
export type Term = Factor & { and?: Factor[] };

type FactOp = '=' | '!=' | '<' | '>' | '<=' | '>=';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const GLOB = /^[A-Za-z0-9._*?[\]-]{1,128}$/;

function bad(expr: string, why: string): never {
  throw new OperatorError('E_TARGET_INVALID', `Invalid target expression ${JSON.stringify(expr)}: ${why}`);
}

function globToRegExp(g: string): RegExp {
  let re = '';
  for (const ch of g) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[' || ch === ']') re += ch;
    else re += ch.replace(/[.\\^$+(){}|-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function parseFactor(raw: string, expr: string): Factor {
  const not = raw.trim().startsWith('!');
  const t = (not ? raw.trim().slice(1) : raw).trim();
  if (t === 'all' || t === '*') return { kind: 'all', not };
  if (t.startsWith('group:')) {
    const name = t.slice(6);
    if (!NAME.test(name)) bad(expr, `${JSON.stringify(name)} is not a group name`);
    return { kind: 'group', name, not };
  }
  if (t.startsWith('peer:')) {
    const name = t.slice(5);
    if (!NAME.test(name)) bad(expr, `${JSON.stringify(name)} is not a peer id`);
    return { kind: 'peer', name, not };
  }
  if (t.startsWith('label:')) {
    const m = /^([A-Za-z0-9._/-]{1,63})=(.{0,253})$/.exec(t.slice(6));
    if (m === null) bad(expr, `${JSON.stringify(t)} is not label:KEY=VALUE`);
    return { kind: 'label', key: m[1] as string, value: m[2] as string, not };
  }
  if (t.startsWith('fact:')) {
    const m = /^([A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7})(<=|>=|!=|=|<|>)(.{1,253})$/.exec(
      t.slice(5),
    );
    if (m === null) bad(expr, `${JSON.stringify(t)} is not fact:PATH=VALUE (or !=, <, >, <=, >=)`);
    return {
      kind: 'fact',
      path: (m[1] as string).split('.'),
      op: m[2] as FactOp,
      value: m[3] as string,
      not,
    };
  }
  if (t.startsWith('addr:') || t.startsWith('net:')) return netFactor(t, not, expr);
  if (GLOB.test(t)) return { kind: 'glob', pattern: globToRegExp(t), text: t, not };
  return bad(expr, `cannot read term ${JSON.stringify(raw)}`);
}

/**
 * `addr:IP` (one address) or `net:CIDR` (a network): matched against the addresses in the
 * peer's signed facts. Node's BlockList does the matching, IPv4 and IPv6 alike.
 */
function netFactor(t: string, not: boolean, expr: string): Factor {
  const text = t.slice(t.indexOf(':') + 1);
  const block = new BlockList();
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) bad(expr, `${JSON.stringify(ip)} is not an IP address`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (slash < 0 || t.startsWith('addr:')) {
    if (slash >= 0) bad(expr, `addr: takes one address; use net:${text} for a network`);
    block.addAddress(ip, type);
  } else {
    const bits = text.slice(slash + 1);
    const n = Number(bits);
    if (!/^\d{1,3}$/.test(bits) || n > (family === 4 ? 32 : 128))
      bad(expr, `${JSON.stringify(text)} is not a network (ADDRESS/BITS)`);
    block.addSubnet(ip, n, type);
  }
  return { kind: 'net', text, block, not };
}

/** `--peer` values that are addresses or networks (`10.10.0.42`, `10.10.0.0/24`) as target terms. */
export function peerTerm(value: string): string {
  const v = value.trim();
  const ip = v.includes('/') ? v.slice(0, v.indexOf('/')) : v;
  if (isIP(ip) === 0) return `peer:${v}`;
  return v.includes('/') ? `net:${v}` : `addr:${v}`;
}

/** Every address in a peer's facts (`addresses: {iface: [addr…]}`). */
function addressesOf(facts: Record<string, unknown> | undefined): string[] {
  const a = facts?.addresses;
  if (typeof a !== 'object' || a === null || Array.isArray(a)) return [];
  return Object.values(a as Record<string, unknown>).flatMap((l) =>
    Array.isArray(l) ? l.filter((x): x is string => typeof x === 'string') : [],
  );
}

function inNet(block: BlockList, address: string): boolean {
  // An IPv6 address with a zone (fe80::1%eth0) is matched without it.
  const ip = address.split('%')[0] as string;
  const family = isIP(ip);
  return family !== 0 && block.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Parses a target expression: comma-separated parts (a union), each one factor or several
 * joined by ` and ` / `&` (an intersection); `!` negates a factor, and a part that is a single
 * negated factor is an exclusion from the whole union.
 */
export function parseTarget(expr: string): Term[] {
  if (expr.length === 0 || expr.length > 1024) bad(expr, 'empty or longer than 1024 characters');
  const terms: Term[] = [];
  for (const raw of expr.split(',')) {
    const [first, ...rest] = raw.split(/\s+and\s+|&/).map((f) => parseFactor(f, expr));
    if (first === undefined) bad(expr, 'empty term');
    terms.push(rest.length === 0 ? first : { ...first, and: rest });
  }
  if (terms.every((t) => isExclusion(t))) bad(expr, 'only exclusions: say what to include');
  return terms;
}

function isExclusion(t: Term): boolean {
  return t.not && (t.and ?? []).length === 0;
}

/** A.B.C of a facts object, as text; undefined when absent or not a scalar. */
function factAt(facts: Record<string, unknown> | undefined, path: readonly string[]): string | undefined {
  let v: unknown = facts;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** Version-aware order: `1.10` > `1.9`; dotted/dashed parts compared as numbers when both are. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const c = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

function factMatches(f: Extract<Factor, { kind: 'fact' }>, p: FleetPeer): boolean {
  const v = factAt(p.facts, f.path);
  if (v === undefined) return false;
  if (f.op === '=') return v === f.value;
  if (f.op === '!=') return v !== f.value;
  const c = compareVersions(v, f.value);
  return f.op === '<' ? c < 0 : f.op === '>' ? c > 0 : f.op === '<=' ? c <= 0 : c >= 0;
}

/** Whether an expression has a `fact:` term (the caller then supplies verified facts). */
export function usesFacts(terms: readonly Term[]): boolean {
  const facty = (f: Factor) => f.kind === 'fact' || f.kind === 'net';
  return terms.some((t) => facty(t) || (t.and ?? []).some(facty));
}

/** A part matches when every factor does (each with its own negation). */
function partMatches(t: Term, p: FleetPeer): boolean {
  return [t, ...(t.and ?? [])].every((f) => matches(f, p) !== f.not);
}

function matches(t: Factor, p: FleetPeer): boolean {
  switch (t.kind) {
    case 'all':
      return true;
    case 'group':
      return p.groups.includes(t.name);
    case 'peer':
      return p.id === t.name;
    case 'label':
      return p.labels?.[t.key] === t.value;
    case 'glob':
      return t.pattern.test(p.id);
    case 'fact':
      return factMatches(t, p);
    case 'net':
      return addressesOf(p.facts).some((a) => inNet(t.block, a));
  }
}

export interface Resolved {
  peers: string[];
  /** Groups the command is for; empty when any included term is not a group (peer-addressed). */
  groups: string[];
}

/** Resolves an expression against the fleet: union of included terms minus excluded ones. */
export function resolveTarget(expr: string, fleet: readonly FleetPeer[]): Resolved {
  const terms = parseTarget(expr);
  const inc = terms.filter((t) => !isExclusion(t));
  const exc = terms.filter((t) => isExclusion(t));
  const peers = fleet
    .filter((p) => inc.some((t) => partMatches(t, p)) && !exc.some((t) => matches(t, p)))
    .map((p) => p.id)
    .sort();
  // A group command (peers check their membership) when every included part starts with a
  // group: `group:web and fact:arch=x86_64` is still for group web, only narrowed.
  const groups = inc.every((t) => t.kind === 'group' && !t.not)
    ? [...new Set(inc.map((t) => (t.kind === 'group' ? t.name : '')))].sort()
    : [];
  // A peer named explicitly must be one the broker knows (it has connected or enrolled once):
  // a typo must fail now, not after the whole --timeout waiting for a peer that cannot answer.
  const known = new Set(fleet.map((p) => p.id));
  const unknown = inc.flatMap((t) =>
    [t, ...(t.and ?? [])].flatMap((f) => (f.kind === 'peer' && !f.not && !known.has(f.name) ? [f.name] : [])),
  );
  if (unknown.length > 0) {
    throw new OperatorError(
      'E_PEER_UNKNOWN',
      `Target ${expr} names ${unknown.length === 1 ? 'a peer' : 'peers'} the broker does not know: ${unknown.join(', ')} (see mway peers)`,
      { details: { peers: unknown } },
    );
  }
  return { peers: peers.sort(), groups };
}

/** `--batch N` or `N%` of `total` (at least 1); undefined means everything at once. */
export function batchSize(spec: string | undefined, total: number): number {
  if (spec === undefined) return Math.max(1, total);
  const m = /^(\d{1,6})(%?)$/.exec(spec);
  if (m === null) throw usageError(`--batch must be N or N%, got ${JSON.stringify(spec)}`);
  const n = Number(m[1]);
  if (n === 0) throw usageError('--batch must be at least 1');
  if (m[2] === '%') {
    if (n > 100) throw usageError('--batch percentage must be 1..100');
    return Math.max(1, Math.ceil((total * n) / 100));
  }
  return n;
}

/** `--max-fail N` (peers) or `N%` (of total): the rollout stops once more than this failed. */
export function failBudget(spec: string | undefined, total: number): number {
  if (spec === undefined) return total;
  const m = /^(\d{1,6})(%?)$/.exec(spec);
  if (m === null) throw usageError(`--max-fail must be N or N%, got ${JSON.stringify(spec)}`);
  const n = Number(m[1]);
  if (m[2] === '%') {
    if (n > 100) throw usageError('--max-fail percentage must be 0..100');
    return Math.floor((total * n) / 100);
  }
  return n;
}
