// THE role table of MilkyWay (architecture page, "who signs what"): which role may sign
// which envelope type, and which CA role may issue which role. Enforced only here.
import { KeysError } from './errors.ts';
import type { Certificate, EnvelopeType, Role } from './types.ts';

/**
 * Envelope types each role may sign. Roots sign only certificates and CRLs.
 * The boot chain (bootchain/): the vendor signs the stage-2 descriptor (`stage2`: kernel,
 * initramfs and command line it ships), the user signs the stage-1 config (`stage1`: which
 * vendor keys stage 1 pins, the rollback floor, the certificate partition's root hash).
 * A/B updates (update/): the vendor signs the bundle (`update`), only the user may let a
 * machine install an older version than it runs (`downgrade`: the machines are the user's).
 * NATS mode (doc/nats.md): a peer, a broker or an operator signs `nats-user`, binding the NATS
 * nkey it connects with to its own certificate; an operator also binds the image's shared
 * enrolling nkey. That is the broker's only signature: it vouches for its own login, nothing else.
 */
export const MAY_SIGN: Readonly<Record<Role, readonly EnvelopeType[]>> = {
  'vendor-root': [],
  vendor: ['coreos', 'bundle', 'update', 'stage2', 'layer', 'config', 'file'],
  'user-root': [],
  'peer-issuer': [],
  user: ['stage1', 'downgrade', 'layer', 'config', 'file'],
  operator: ['command', 'membership', 'enroll-token', 'secret', 'nats-user', 'file'],
  peer: ['result', 'status', 'nats-user', 'file'],
  broker: ['nats-user'],
};

/**
 * Roles each CA role may issue. The one intermediate is the peer issuer: the user root (kept
 * offline) delegates issuing peer certificates to it, so accepting an enrolling machine needs
 * the operator's peer-issuer key, never the root's; it issues peers and nothing else, and no
 * CA below it (its pathLen is 0). Depth is root → leaf or root → peer issuer → peer.
 */
export const MAY_ISSUE: Readonly<Record<Role, readonly Role[]>> = {
  'vendor-root': ['vendor'],
  vendor: [],
  'user-root': ['user', 'operator', 'peer', 'broker', 'peer-issuer'],
  'peer-issuer': ['peer'],
  user: [],
  operator: [],
  peer: [],
  broker: [],
};

export const ROOT_ROLES: readonly Role[] = ['vendor-root', 'user-root'];

/** CA roles that are not anchors: a CRL they sign is checked through their chain to a root. */
export const INTERMEDIATE_ROLES: readonly Role[] = ['peer-issuer'];

export function isRootRole(role: Role): boolean {
  return ROOT_ROLES.includes(role);
}

/** Throws E_ROLE_MAY_NOT_SIGN when `cert`'s role may not sign `type`. */
export function assertMaySign(cert: Certificate, type: EnvelopeType): void {
  if (!MAY_SIGN[cert.role].includes(type)) {
    throw new KeysError(
      'E_ROLE_MAY_NOT_SIGN',
      `A ${cert.role} certificate (${cert.subject}) may not sign ${type} envelopes (allowed: ${MAY_SIGN[cert.role].join(', ') || 'none'})`,
      { details: { role: cert.role, type, fingerprint: cert.fingerprint } },
    );
  }
}

/** Throws E_CERT_ROLE when `issuer` may not issue a certificate of `subject`'s role. */
export function assertMayIssue(issuer: Certificate, subjectRole: Role): void {
  if (!MAY_ISSUE[issuer.role].includes(subjectRole)) {
    throw new KeysError(
      'E_CERT_ROLE',
      `A ${issuer.role} certificate (${issuer.subject}) may not issue ${subjectRole} certificates`,
      { details: { issuerRole: issuer.role, subjectRole } },
    );
  }
}

/** Extended key usages per role: brokers serve TLS, peers/operators are TLS clients. */
export function tlsUsages(role: Role): { server: boolean; client: boolean } {
  switch (role) {
    case 'broker':
      return { server: true, client: true };
    case 'peer':
    case 'operator':
      return { server: false, client: true };
    default:
      return { server: false, client: false };
  }
}
