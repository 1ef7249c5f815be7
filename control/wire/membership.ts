// Group memberships (doc/commands.md): an operator-signed statement "peer P is (or is no
// longer) in group G", held by P itself. A command to G runs only where a valid membership of
// G is held, so the broker, which only relays these envelopes, cannot add a peer to a group.
import {
  type Certificate,
  type Crl,
  type Envelope,
  KeysError,
  type SigningKey,
  signEnvelope,
  verifyEnvelope,
} from '../../keys/index.ts';
import { isName, signingChain } from './command.ts';
import { ControlError } from './control-error.ts';
import { MODULE_RUN } from './module-run.ts';

export interface MembershipPayload {
  v: 1;
  fleet: string;
  group: string;
  /** The peer id (from the peer certificate's MilkyWay extension). */
  peer: string;
  /** true: joins the group; false: leaves it (the newest statement per group wins). */
  member: boolean;
  issuedAt: string;
}

/** Scope an operator needs to sign memberships of a group (besides the group itself). */
export const GROUP_ACTION = 'group';

function bad(message: string): never {
  throw new ControlError('E_MEMBERSHIP_MALFORMED', `Malformed membership: ${message}`);
}

export function parseMembershipPayload(p: unknown): MembershipPayload {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) bad('payload is not an object');
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['v', 'fleet', 'group', 'peer', 'member', 'issuedAt'].includes(k))
      bad(`unknown field ${JSON.stringify(k)}`);
  }
  if (o.v !== 1) bad('version is not 1');
  if (!isName(o.fleet) || !isName(o.group) || !isName(o.peer)) bad('fleet, group and peer must be names');
  if (typeof o.member !== 'boolean') bad('member must be true or false');
  if (typeof o.issuedAt !== 'string' || Number.isNaN(Date.parse(o.issuedAt))) bad('issuedAt is not a time');
  return { v: 1, fleet: o.fleet, group: o.group, peer: o.peer, member: o.member, issuedAt: o.issuedAt };
}

/** Whether an operator's certificate scope covers a group / an action. `*` covers every group. */
export function scopeHasGroup(cert: Certificate, group: string): boolean {
  const groups = cert.scope?.groups ?? [];
  return groups.includes('*') || groups.includes(group);
}

/**
 * Scope entries name an action (`service.restart`), its family (`service`) or its verb
 * (`restart`); `*` covers
 * every action except `exec`, which needs its own explicit entry. `module.run` is never covered
 * here: it needs `module:<layer>.<action>` (module-run.ts, `scopeCoversModule`).
 */
export function scopeHasAction(cert: Certificate, action: string): boolean {
  if (action === MODULE_RUN) return false;
  // A chunk of a layer is part of installing it: the same scope covers both.
  if (action === 'layer.chunk') return scopeHasAction(cert, 'layer.install');
  if (action === 'coreos.chunk') return scopeHasAction(cert, 'coreos.update');
  const actions = cert.scope?.actions ?? [];
  if (actions.includes(action)) return true;
  const [family, verb] = action.split('.') as [string, string | undefined];
  if (actions.includes(family)) return true;
  // The short verb (`restart`, `logs`, `install`) as doc/keys.md's examples write it.
  if (verb !== undefined && actions.includes(verb)) return true;
  return action !== 'exec' && actions.includes('*');
}

export function signMembership(o: {
  fleet: string;
  group: string;
  peer: string;
  member: boolean;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date;
}): Envelope {
  const now = o.now ?? new Date();
  const payload = parseMembershipPayload({
    v: 1,
    fleet: o.fleet,
    group: o.group,
    peer: o.peer,
    member: o.member,
    // Milliseconds: the peer keeps the newest statement per group, so a remove and a re-add
    // signed within one second must still be ordered.
    issuedAt: now.toISOString(),
  });
  return signEnvelope({ type: 'membership', payload, key: o.key, chain: signingChain(o.chain), now });
}

export interface MembershipTrust {
  anchors: readonly Certificate[];
  crls?: readonly Crl[];
  at?: Date;
  fleet: string;
  peer: string;
}

export interface VerifiedMembership {
  payload: MembershipPayload;
  signer: Certificate;
  envelope: Envelope;
}

/**
 * Verifies a membership for this peer: operator chain to the user root (not revoked), the
 * signer's scope covers the group and `group` action, fleet and peer are ours.
 */
export function verifyMembership(
  env: Envelope,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date; fleet: string; peer: string },
): VerifiedMembership {
  let verified: { payload: unknown; signer: Certificate };
  try {
    verified = verifyEnvelope(env, { type: 'membership', anchors: o.anchors, crls: o.crls, at: o.at });
  } catch (e) {
    const code =
      e instanceof KeysError && e.code === 'E_CERT_REVOKED' ? 'E_MEMBERSHIP_REVOKED' : 'E_MEMBERSHIP_INVALID';
    throw new ControlError(code, `Membership refused: ${(e as Error).message}`, { cause: e });
  }
  const payload = parseMembershipPayload(verified.payload);
  const signer = verified.signer;
  if (payload.fleet !== o.fleet || payload.peer !== o.peer) {
    throw new ControlError(
      'E_MEMBERSHIP_PEER',
      `Membership is for peer ${payload.peer} in fleet ${payload.fleet}, this is ${o.peer} in ${o.fleet}`,
    );
  }
  if (!scopeHasGroup(signer, payload.group) || !scopeHasAction(signer, GROUP_ACTION)) {
    throw new ControlError(
      'E_MEMBERSHIP_SCOPE',
      `Operator ${signer.subject} may not manage group ${payload.group} (scope: groups ${signer.scope?.groups.join(',') ?? '-'}, actions ${signer.scope?.actions.join(',') ?? '-'})`,
    );
  }
  return { payload, signer, envelope: env };
}
