// Enrollment tokens (Salt's autosign grains, Talos's machine token), done with our PKI: an
// operator signs "up to N machines presenting this, until T, may join fleet F with these
// groups and labels". The token goes into the image or a cloud-init seed; the peer puts it
// in its enrollment request, which its own new key signs (so a token seen on the wire cannot be
// moved to another request). `mway peers autosign` — which holds the issuer key; the broker
// never does — accepts such requests without a manual step, counting each token's uses itself
// so a broker that lies cannot get more certificates out of a token than it allows.
// Format: doc/protocol.md "Enrollment tokens".
import { randomBytes } from 'node:crypto';
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
import { isId } from './protocol.ts';
import { scopeHasAction, scopeHasGroup } from './membership.ts';

/** Scope an operator needs to sign enrollment tokens (`*` covers it). */
export const ENROLL_ACTION = 'enroll';
export const MAX_TOKEN_USES = 10_000;
/** The longest a token may live: it is a bearer credential in an image. */
export const MAX_TOKEN_TTL_MS = 366 * 24 * 3600 * 1000;
/** Largest token (JSON bytes) an enrollment request may carry. */
export const MAX_TOKEN_BYTES = 32_768;

export interface EnrollTokenPayload {
  v: 1;
  /** 32 hex digits: what uses are counted under. */
  id: string;
  fleet: string;
  /** Groups the accepted peer's memberships are signed for. */
  groups: string[];
  /** Labels the accepted peer gets (over the ones it asked for). */
  labels: Record<string, string>;
  /** How many machines may enroll with it. */
  uses: number;
  issuedAt: string;
  expiresAt: string;
}

function bad(message: string): never {
  throw new ControlError('E_ENROLL_TOKEN_INVALID', `Malformed enrollment token: ${message}`);
}

export function parseEnrollTokenPayload(p: unknown): EnrollTokenPayload {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) bad('payload is not an object');
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['v', 'id', 'fleet', 'groups', 'labels', 'uses', 'issuedAt', 'expiresAt'].includes(k))
      bad(`unknown field ${JSON.stringify(k)}`);
  }
  if (o.v !== 1) bad('version is not 1');
  if (typeof o.id !== 'string' || !/^[0-9a-f]{32}$/.test(o.id)) bad('id is not 32 hex digits');
  if (!isName(o.fleet)) bad('fleet is not a name');
  if (!Array.isArray(o.groups) || o.groups.length > 64 || !o.groups.every(isName))
    bad('groups must be at most 64 group names');
  const labels = o.labels as Record<string, unknown> | null;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) bad('labels is not an object');
  const entries = Object.entries(labels);
  if (entries.length > 32 || entries.some(([k, v]) => !isId(k) || typeof v !== 'string' || v.length > 256))
    bad('labels must be at most 32 id=string pairs');
  if (!Number.isInteger(o.uses) || (o.uses as number) < 1 || (o.uses as number) > MAX_TOKEN_USES)
    bad(`uses must be a whole number 1..${MAX_TOKEN_USES}`);
  const issued = typeof o.issuedAt === 'string' ? Date.parse(o.issuedAt) : Number.NaN;
  const expires = typeof o.expiresAt === 'string' ? Date.parse(o.expiresAt) : Number.NaN;
  if (Number.isNaN(issued) || Number.isNaN(expires)) bad('issuedAt and expiresAt must be times');
  if (expires <= issued || expires - issued > MAX_TOKEN_TTL_MS)
    bad('expiresAt must be after issuedAt, within 366 days');
  return {
    v: 1,
    id: o.id,
    fleet: o.fleet,
    groups: [...(o.groups as string[])],
    labels: Object.fromEntries(entries) as Record<string, string>,
    uses: o.uses as number,
    issuedAt: o.issuedAt as string,
    expiresAt: o.expiresAt as string,
  };
}

/** Signs a new token with the operator's key (its scope must cover `enroll` and the groups). */
export function signEnrollToken(o: {
  fleet: string;
  groups?: readonly string[];
  labels?: Record<string, string>;
  uses: number;
  ttlMs: number;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date;
}): Envelope {
  const now = o.now ?? new Date();
  const issued = Math.floor(now.getTime() / 1000) * 1000;
  const payload = parseEnrollTokenPayload({
    v: 1,
    id: randomBytes(16).toString('hex'),
    fleet: o.fleet,
    groups: [...(o.groups ?? [])],
    labels: o.labels ?? {},
    uses: o.uses,
    issuedAt: new Date(issued).toISOString(),
    expiresAt: new Date(issued + o.ttlMs).toISOString(),
  });
  const leaf = o.chain[0];
  if (leaf !== undefined) checkTokenScope(leaf, payload);
  return signEnvelope({ type: 'enroll-token', payload, key: o.key, chain: signingChain(o.chain), now });
}

function checkTokenScope(signer: Certificate, p: EnrollTokenPayload): void {
  const outside = p.groups.filter((g) => !scopeHasGroup(signer, g));
  if (!scopeHasAction(signer, ENROLL_ACTION) || outside.length > 0) {
    throw new ControlError(
      'E_ENROLL_TOKEN_SCOPE',
      `Operator ${signer.subject} may not sign enrollment tokens${outside.length > 0 ? ` for group(s) ${outside.join(', ')}` : ''} (scope: groups ${signer.scope?.groups.join(',') ?? '-'}, actions ${signer.scope?.actions.join(',') ?? '-'})`,
    );
  }
}

export interface VerifiedEnrollToken {
  payload: EnrollTokenPayload;
  signer: Certificate;
}

/**
 * Verifies a token for `fleet` at `at`: an operator chain to the anchors (not revoked), whose
 * scope covers `enroll` and every group of the token, not expired. Uses are not counted here:
 * that is the caller's ledger (the autosigner's).
 */
export function verifyEnrollToken(
  env: unknown,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date; fleet: string },
): VerifiedEnrollToken {
  if (typeof env !== 'object' || env === null || JSON.stringify(env).length > MAX_TOKEN_BYTES)
    bad(`not an envelope of at most ${MAX_TOKEN_BYTES} bytes`);
  let verified: { payload: unknown; signer: Certificate };
  const at = o.at ?? new Date();
  try {
    // The signer's certificate is checked as of now: a token outlives no revocation.
    verified = verifyEnvelope(env as Envelope, {
      type: 'enroll-token',
      anchors: o.anchors,
      crls: o.crls,
      at,
    });
  } catch (e) {
    const code =
      e instanceof KeysError && e.code === 'E_CERT_REVOKED'
        ? 'E_ENROLL_TOKEN_REVOKED'
        : 'E_ENROLL_TOKEN_INVALID';
    throw new ControlError(code, `Enrollment token refused: ${(e as Error).message}`, { cause: e });
  }
  const payload = parseEnrollTokenPayload(verified.payload);
  if (payload.fleet !== o.fleet)
    throw new ControlError(
      'E_ENROLL_TOKEN_INVALID',
      `Enrollment token is for fleet ${payload.fleet}, not ${o.fleet}`,
    );
  if (Date.parse(payload.expiresAt) <= at.getTime())
    throw new ControlError(
      'E_ENROLL_TOKEN_EXPIRED',
      `Enrollment token ${payload.id} expired at ${payload.expiresAt}`,
    );
  checkTokenScope(verified.signer, payload);
  return { payload, signer: verified.signer };
}
