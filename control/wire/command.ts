// Command envelopes (doc/commands.md): what an operator signs and every peer checks.
// A keys/ envelope of type `command` (context `milkyway/v1/command`) whose payload has a
// 128-bit id, issue and expiry times, the audience, an allow-listed action, its arguments
// and the operator's sequence number. Parsing is strict: unknown fields are refused.
import { createHash, randomBytes } from 'node:crypto';
import {
  type Certificate,
  type Envelope,
  type SigningKey,
  serialize,
  signEnvelope,
} from '../../keys/index.ts';
import { ControlError } from './control-error.ts';
import { MODULE_RUN, parseModuleRunArgs } from './module-run.ts';

/** Every action a peer may run; anything else is refused before it reaches the agent. */
export const COMMAND_ACTIONS = [
  'status',
  'service.list',
  'service.status',
  'service.start',
  'service.stop',
  'service.restart',
  'service.enable',
  'service.disable',
  'service.logs',
  'layer.install',
  'layer.chunk',
  'layer.remove',
  'secrets.put',
  'reboot',
  'poweroff',
  'exec',
  'crl.install',
  'job.cancel',
  'coreos.update',
  'coreos.chunk',
  'coreos.rollback',
  'coreos.cancel',
  'module.run',
] as const;
export type CommandAction = (typeof COMMAND_ACTIONS)[number];

/** Longest a command may live: the replay cache keeps each id this long at most. */
export const MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_TTL_MS = 15 * 60 * 1000;
/** Caps so a hostile broker cannot make a peer parse megabytes of audience. */
export const MAX_AUDIENCE_PEERS = 100_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const ID = /^[0-9a-f]{32}$/;

export interface Audience {
  /** The fleet name (a user root may own several fleets behind one broker). */
  fleet: string;
  /** The target expression as the operator typed it (`group:web`, `peer:p1,p2`, `all`). */
  target: string;
  /** Groups the expression names: a peer runs the command only while it holds a membership of one. */
  groups: string[];
  /** Peer ids the broker resolved the expression to at signing time; a peer not listed refuses. */
  peers: string[];
}

export interface CommandPayload {
  v: 1;
  /** 128 random bits, lowercase hex. */
  id: string;
  issuedAt: string;
  expiresAt: string;
  audience: Audience;
  action: CommandAction;
  args: Record<string, unknown>;
  /** The operator's own counter, strictly increasing per operator key (audit and ordering). */
  seq: number;
}

export function newCommandId(): string {
  return randomBytes(16).toString('hex');
}

function bad(message: string, field: string): never {
  throw new ControlError('E_CMD_MALFORMED', `Malformed command: ${message}`, { path: field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function only(o: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`unknown field ${JSON.stringify(k)}`, where);
}

function isoTime(v: unknown, field: string): string {
  if (
    typeof v !== 'string' ||
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/.test(v) ||
    Number.isNaN(Date.parse(v))
  ) {
    bad(`${field} is not an ISO 8601 UTC time`, field);
  }
  return v;
}

function names(v: unknown, field: string, max: number): string[] {
  if (!Array.isArray(v) || v.length > max) bad(`${field} must be an array of at most ${max} names`, field);
  for (const [i, x] of v.entries()) {
    if (typeof x !== 'string' || !NAME.test(x)) bad(`${field}[${i}] is not a valid name`, `${field}[${i}]`);
  }
  return v as string[];
}

export function isName(v: unknown): v is string {
  return typeof v === 'string' && NAME.test(v);
}

/** Checks the payload's shape and returns it typed; throws E_CMD_MALFORMED naming the field. */
export function parseCommandPayload(p: unknown): CommandPayload {
  if (!isObject(p)) bad('payload is not an object', 'payload');
  only(p, ['v', 'id', 'issuedAt', 'expiresAt', 'audience', 'action', 'args', 'seq'], 'payload');
  if (p.v !== 1) bad(`version ${JSON.stringify(p.v)} is not 1`, 'v');
  if (typeof p.id !== 'string' || !ID.test(p.id)) bad('id is not 32 lowercase hex digits', 'id');
  const issuedAt = isoTime(p.issuedAt, 'issuedAt');
  const expiresAt = isoTime(p.expiresAt, 'expiresAt');
  if (Date.parse(expiresAt) <= Date.parse(issuedAt)) bad('expiresAt is not after issuedAt', 'expiresAt');
  const a = p.audience;
  if (!isObject(a)) bad('audience is not an object', 'audience');
  only(a, ['fleet', 'target', 'groups', 'peers'], 'audience');
  if (!isName(a.fleet)) bad('audience.fleet is not a valid name', 'audience.fleet');
  if (typeof a.target !== 'string' || a.target.length > 1024)
    bad('audience.target is not a string', 'audience.target');
  const groups = names(a.groups, 'audience.groups', 1024);
  const peers = names(a.peers, 'audience.peers', MAX_AUDIENCE_PEERS);
  if (typeof p.action !== 'string' || !(COMMAND_ACTIONS as readonly string[]).includes(p.action)) {
    throw new ControlError(
      'E_CMD_ACTION_UNKNOWN',
      `Command action ${JSON.stringify(p.action)} is not allow-listed`,
      {
        path: 'action',
      },
    );
  }
  if (!isObject(p.args)) bad('args is not an object', 'args');
  if (p.action === MODULE_RUN) parseModuleRunArgs(p.args);
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0)
    bad('seq is not a non-negative integer', 'seq');
  return {
    v: 1,
    id: p.id,
    issuedAt,
    expiresAt,
    audience: { fleet: a.fleet, target: a.target, groups, peers },
    action: p.action as CommandAction,
    args: p.args,
    seq: p.seq,
  };
}

export interface BuildCommandOptions {
  action: CommandAction;
  args?: Record<string, unknown>;
  audience: Audience;
  seq: number;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date;
  ttlMs?: number;
  id?: string;
}

/** Signs a command envelope; the payload goes through the same parser the peers use. */
export function buildCommand(o: BuildCommandOptions): Envelope {
  const now = o.now ?? new Date();
  const ttl = o.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttl > 0 && ttl <= MAX_LIFETIME_MS)) {
    throw new ControlError(
      'E_CMD_LIFETIME',
      `Command lifetime must be 1 ms .. ${MAX_LIFETIME_MS / 86_400_000} days`,
    );
  }
  const payload = parseCommandPayload({
    v: 1,
    id: o.id ?? newCommandId(),
    issuedAt: new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString(),
    expiresAt: new Date(Math.floor((now.getTime() + ttl) / 1000) * 1000).toISOString(),
    audience: o.audience,
    action: o.action,
    args: o.args ?? {},
    seq: o.seq,
  });
  return signEnvelope({ type: 'command', payload, key: o.key, chain: signingChain(o.chain), now });
}

/**
 * The chain to embed in a signature: the leaf and any intermediate (a peer's peer issuer),
 * without the root. Every verifier holds the root as its trust anchor already, and an
 * ML-DSA-65 root certificate is ~7 KB of base64 in every command, result and status otherwise.
 */
export function signingChain(chain: readonly Certificate[]): Certificate[] {
  const out = chain.filter((c) => !(c.isCA && (c.role === 'user-root' || c.role === 'vendor-root')));
  return out.length === 0 ? [...chain] : out;
}

/** SHA-256 of the envelope's canonical wire form: what a result is bound to. */
export function envelopeDigest(env: Envelope): string {
  return createHash('sha256').update(serialize(env)).digest('hex');
}
