// Target expressions, batches and failure budgets for fleet commands (doc/commands.md,
// "Targeting"). An expression is a comma-separated union of terms, each optionally negated
// with `!`: `all`, `group:NAME`, `peer:ID`, `label:KEY=VALUE`, or a glob on peer ids
// (`web-*`). Resolution runs on the operator's side against the broker's peer list; the
// peers re-check membership themselves, so a wrong list can only make them refuse.
import { usageError } from './operator-error.ts';
import { OperatorError } from './operator-error.ts';

export interface FleetPeer {
  id: string;
  groups: string[];
  labels?: Record<string, string>;
  online?: boolean;
}

export type Term =
  | { kind: 'all'; not: boolean }
  | { kind: 'group'; name: string; not: boolean }
  | { kind: 'peer'; name: string; not: boolean }
  | { kind: 'label'; key: string; value: string; not: boolean }
  | { kind: 'glob'; pattern: RegExp; text: string; not: boolean };

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

export function parseTarget(expr: string): Term[] {
  if (expr.length === 0 || expr.length > 1024) bad(expr, 'empty or longer than 1024 characters');
  const terms: Term[] = [];
  for (const raw of expr.split(',')) {
    const not = raw.startsWith('!');
    const t = (not ? raw.slice(1) : raw).trim();
    if (t === 'all' || t === '*') terms.push({ kind: 'all', not });
    else if (t.startsWith('group:')) {
      const name = t.slice(6);
      if (!NAME.test(name)) bad(expr, `${JSON.stringify(name)} is not a group name`);
      terms.push({ kind: 'group', name, not });
    } else if (t.startsWith('peer:')) {
      const name = t.slice(5);
      if (!NAME.test(name)) bad(expr, `${JSON.stringify(name)} is not a peer id`);
      terms.push({ kind: 'peer', name, not });
    } else if (t.startsWith('label:')) {
      const m = /^([A-Za-z0-9._/-]{1,63})=(.{0,253})$/.exec(t.slice(6));
      if (m === null) bad(expr, `${JSON.stringify(t)} is not label:KEY=VALUE`);
      terms.push({ kind: 'label', key: m[1] as string, value: m[2] as string, not });
    } else if (GLOB.test(t)) terms.push({ kind: 'glob', pattern: globToRegExp(t), text: t, not });
    else bad(expr, `cannot read term ${JSON.stringify(raw)}`);
  }
  if (terms.every((t) => t.not)) bad(expr, 'only exclusions: say what to include');
  return terms;
}

function matches(t: Term, p: FleetPeer): boolean {
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
  const inc = terms.filter((t) => !t.not);
  const exc = terms.filter((t) => t.not);
  const peers = fleet
    .filter((p) => inc.some((t) => matches(t, p)) && !exc.some((t) => matches(t, p)))
    .map((p) => p.id)
    .sort();
  const groups = inc.every((t) => t.kind === 'group')
    ? inc.map((t) => (t.kind === 'group' ? t.name : '')).sort()
    : [];
  // A peer named explicitly must be one the broker knows (it has connected or enrolled once):
  // a typo must fail now, not after the whole --timeout waiting for a peer that cannot answer.
  const known = new Set(fleet.map((p) => p.id));
  const unknown = inc.flatMap((t) => (t.kind === 'peer' && !known.has(t.name) ? [t.name] : []));
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
