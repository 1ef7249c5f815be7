// The peer's checks on a command before anything runs (doc/commands.md, "What a peer
// checks"), in order, fail closed, each refusal with its own code: envelope and signature,
// operator chain to the user root and revocation, this peer's own certificate, payload shape,
// time window with bounded skew, audience, operator scope and group membership, replay, and
// the operator's sequence number (used once, not more than SEQ_WINDOW behind its highest).
import {
  type CommandPayload,
  ControlError,
  envelopeDigest,
  MAX_LIFETIME_MS,
  MODULE_RUN,
  moduleScope,
  parseCommandPayload,
  parseModuleRunArgs,
  scopeCoversModule,
  scopeHasAction,
  scopeHasGroup,
  type WireCode,
} from '../../control/wire/index.ts';
import {
  type Certificate,
  type Crl,
  type Envelope,
  KeysError,
  parseEnvelope,
  verifyChain,
  verifyEnvelope,
} from '../../keys/index.ts';
import { type ReplayCache, SEQ_WINDOW, type SeqClaim } from './replay-cache.ts';

/** Clock skew tolerated between operator and peer, both ways. */
export const DEFAULT_SKEW_MS = 60_000;
export const MAX_SKEW_MS = 15 * 60_000;

export interface CheckContext {
  /** The user root(s) from the certificate partition. */
  anchors: readonly Certificate[];
  crls: readonly Crl[];
  fleet: string;
  peerId: string;
  /** This peer's chain, leaf first: a revoked peer refuses to act. */
  peerChain: readonly Certificate[];
  /** Groups this peer holds valid memberships of (membership.ts `MembershipStore.groups`). */
  groups: ReadonlyMap<string, Certificate>;
  replay: ReplayCache;
  now?: Date;
  skewMs?: number;
}

export interface CheckedCommand {
  payload: CommandPayload;
  operator: Certificate;
  envelope: Envelope;
  digest: string;
}

function refuse(code: WireCode, message: string, cause?: unknown, details?: Record<string, unknown>): never {
  throw new ControlError(code, message, {
    ...(cause === undefined ? {} : { cause }),
    ...(details === undefined ? {} : { details }),
  });
}

function operatorCode(e: KeysError): WireCode {
  switch (e.code) {
    case 'E_CERT_REVOKED':
      return 'E_CMD_OPERATOR_REVOKED';
    case 'E_SIG_INVALID':
    case 'E_ENVELOPE_MALFORMED':
    case 'E_ENVELOPE_TYPE':
    case 'E_TOO_LARGE':
      return 'E_CMD_SIGNATURE';
    default:
      // Untrusted root, expired certificate, a role that may not sign commands, …
      return 'E_CMD_OPERATOR_UNTRUSTED';
  }
}

/**
 * The peer's own chain is the same on every command: its verdict is reused for 10 s per CRL
 * list (a new list, i.e. a reloaded CRL, checks again). A certificate that expires inside
 * that window is refused up to 10 s late.
 */
const ownChainCache = new WeakMap<readonly Crl[], Map<string, { at: number; error: unknown }>>();

function checkOwnChain(ctx: CheckContext, now: Date): void {
  const leaf = ctx.peerChain[0]?.fingerprint ?? '';
  let byLeaf = ownChainCache.get(ctx.crls);
  if (byLeaf === undefined) {
    byLeaf = new Map();
    ownChainCache.set(ctx.crls, byLeaf);
  }
  const hit = byLeaf.get(leaf);
  const t = now.getTime();
  if (hit !== undefined && t >= hit.at && t - hit.at < 10_000) {
    if (hit.error !== undefined) throw hit.error;
    return;
  }
  try {
    verifyChain(ctx.peerChain, { anchors: ctx.anchors, crls: ctx.crls, at: now, roles: ['peer'] });
    byLeaf.set(leaf, { at: t, error: undefined });
  } catch (e) {
    byLeaf.set(leaf, { at: t, error: e });
    throw e;
  }
}

/** The digest a replay entry holds for an id a signed `job.cancel` claimed before it ran. */
export const CANCELLED = 'cancelled';

/** Every check except the replay cache claim; pure, so the broker-side tools can dry-run it. */
export function checkCommand(input: Envelope | string | Uint8Array, ctx: CheckContext): CheckedCommand {
  const now = ctx.now ?? new Date();
  const skew = Math.min(ctx.skewMs ?? DEFAULT_SKEW_MS, MAX_SKEW_MS);
  let envelope: Envelope;
  let operator: Certificate;
  let raw: unknown;
  try {
    envelope = parseEnvelope(input);
    const v = verifyEnvelope(envelope, { type: 'command', anchors: ctx.anchors, crls: ctx.crls, at: now });
    operator = v.signer;
    raw = v.payload;
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    refuse(operatorCode(e), `Command refused: ${e.message}`, e, { keysCode: e.code });
  }
  if (operator.role !== 'operator' || envelope.signatures.length !== 1) {
    refuse('E_CMD_OPERATOR_UNTRUSTED', 'Command refused: it must carry exactly one operator signature');
  }
  try {
    checkOwnChain(ctx, now);
  } catch (e) {
    if (e instanceof KeysError && e.code === 'E_CERT_REVOKED') {
      refuse('E_CMD_PEER_REVOKED', `Command refused: this peer's certificate is revoked (${e.message})`, e);
    }
    refuse(
      'E_CMD_PEER_UNTRUSTED',
      `Command refused: this peer's own certificate does not verify (${(e as Error).message})`,
      e,
    );
  }
  const payload = parseCommandPayload(raw);
  const id = payload.id;
  const issued = Date.parse(payload.issuedAt);
  const expires = Date.parse(payload.expiresAt);
  if (expires - issued > MAX_LIFETIME_MS) {
    refuse('E_CMD_LIFETIME', `Command ${id} lives longer than ${MAX_LIFETIME_MS / 86_400_000} days`);
  }
  if (now.getTime() + skew < issued) {
    refuse(
      'E_CMD_NOT_YET_VALID',
      `Command ${id} is not valid before ${payload.issuedAt} (now ${now.toISOString()}, skew ${skew} ms)`,
    );
  }
  if (now.getTime() - skew > expires) {
    refuse(
      'E_CMD_EXPIRED',
      `Command ${id} expired at ${payload.expiresAt} (now ${now.toISOString()}, skew ${skew} ms)`,
    );
  }
  if (payload.audience.fleet !== ctx.fleet) {
    refuse(
      'E_CMD_WRONG_FLEET',
      `Command ${id} is for fleet ${payload.audience.fleet}, this peer is in ${ctx.fleet}`,
    );
  }
  if (!payload.audience.peers.includes(ctx.peerId)) {
    refuse('E_CMD_NOT_ADDRESSED', `Command ${id} does not name this peer (${ctx.peerId}) in its audience`);
  }
  if (payload.action === MODULE_RUN) {
    const m = parseModuleRunArgs(payload.args);
    if (!scopeCoversModule(operator.scope?.actions ?? [], m.module, m.action)) {
      refuse(
        'E_CMD_SCOPE_ACTION',
        `Operator ${operator.subject} may not run ${moduleScope(m.module, m.action)} (allowed: ${operator.scope?.actions.join(', ') ?? 'none'}; a module action needs its own scope entry)`,
      );
    }
  } else if (!scopeHasAction(operator, payload.action)) {
    refuse(
      'E_CMD_SCOPE_ACTION',
      `Operator ${operator.subject} may not run ${payload.action} (allowed: ${operator.scope?.actions.join(', ') ?? 'none'})`,
    );
  }
  checkGroups(payload, operator, ctx);
  if (ctx.replay.get(id)?.digest === CANCELLED) {
    refuse('E_CMD_CANCELLED', `Command ${id} was cancelled by a signed job.cancel before it ran here`);
  }
  if (ctx.replay.get(id) !== undefined) {
    refuse('E_CMD_REPLAYED', `Command ${id} was already received by this peer`, undefined, { id });
  }
  const seq = seqClaim(payload, operator);
  seqRefusal(ctx.replay.checkSeq(seq), payload, operator, ctx.replay.highestSeq(seq.operator));
  return { payload, operator, envelope, digest: envelopeDigest(envelope) };
}

function seqClaim(payload: CommandPayload, operator: Certificate): SeqClaim {
  return { operator: operator.fingerprint, seq: payload.seq };
}

/** Refuses a sequence number used before, or more than SEQ_WINDOW behind the operator's highest. */
function seqRefusal(
  verdict: 'ok' | 'reused' | 'stale',
  payload: CommandPayload,
  operator: Certificate,
  highest: number | undefined,
): void {
  const details = { id: payload.id, seq: payload.seq, highest, operator: operator.fingerprint };
  if (verdict === 'reused') {
    refuse(
      'E_CMD_SEQ_REUSED',
      `Command ${payload.id} reuses sequence number ${payload.seq} of operator ${operator.subject}`,
      undefined,
      details,
    );
  }
  if (verdict === 'stale') {
    refuse(
      'E_CMD_SEQ_STALE',
      `Command ${payload.id} has sequence number ${payload.seq}, more than ${SEQ_WINDOW} below the highest seen from operator ${operator.subject} (${highest})`,
      undefined,
      details,
    );
  }
}

function checkGroups(payload: CommandPayload, operator: Certificate, ctx: CheckContext): void {
  const id = payload.id;
  const groups = payload.audience.groups;
  if (groups.length > 0) {
    const outside = groups.filter((g) => !scopeHasGroup(operator, g));
    if (outside.length > 0) {
      refuse('E_CMD_SCOPE_GROUP', `Operator ${operator.subject} may not command group ${outside.join(', ')}`);
    }
    // The broker resolved the audience; only a membership an operator signed proves it right.
    if (!groups.some((g) => ctx.groups.has(g))) {
      refuse(
        'E_CMD_NOT_MEMBER',
        `Command ${id} is for group ${groups.join(', ')}, this peer holds no membership of it`,
      );
    }
    return;
  }
  // Addressed by peer id: the operator must be in charge of a group this peer is in.
  const covered =
    operator.scope?.groups.includes('*') || [...ctx.groups.keys()].some((g) => scopeHasGroup(operator, g));
  if (!covered) {
    refuse(
      'E_CMD_SCOPE_GROUP',
      `Operator ${operator.subject} is not in charge of any group this peer belongs to`,
    );
  }
}

/**
 * Checks `input` and claims its id in the replay cache (persisted before returning), so the
 * caller may run the action: it will never be run twice for the same id on this peer.
 */
export async function admitCommand(
  input: Envelope | string | Uint8Array,
  ctx: CheckContext,
): Promise<CheckedCommand> {
  const c = checkCommand(input, ctx);
  const skew = Math.min(ctx.skewMs ?? DEFAULT_SKEW_MS, MAX_SKEW_MS);
  const keepUntil = new Date(Date.parse(c.payload.expiresAt) + skew).toISOString();
  const seq = seqClaim(c.payload, c.operator);
  const v = await ctx.replay.claimCommand(c.payload.id, { digest: c.digest, keepUntil }, seq, ctx.now);
  // Between the check and the claim another delivery may have taken the id or the number.
  if (v === 'seq-reused' || v === 'seq-stale') {
    seqRefusal(
      v === 'seq-reused' ? 'reused' : 'stale',
      c.payload,
      c.operator,
      ctx.replay.highestSeq(seq.operator),
    );
  }
  if (v === 'replayed' && ctx.replay.get(c.payload.id)?.digest === CANCELLED) {
    refuse(
      'E_CMD_CANCELLED',
      `Command ${c.payload.id} was cancelled by a signed job.cancel before it ran here`,
    );
  }
  if (v !== 'ok') {
    refuse('E_CMD_REPLAYED', `Command ${c.payload.id} was already received by this peer`, undefined, {
      id: c.payload.id,
    });
  }
  return c;
}
