// Results and status (doc/commands.md): what a peer signs with its peer key. A result is
// bound to the command's id and to the SHA-256 of the exact command envelope it answers, so
// the broker cannot pin one peer's answer on another command or another peer. Status is the
// periodic signed health report (agent state, layers, services).
import {
  type Certificate,
  type Crl,
  type Envelope,
  KeysError,
  type SigningKey,
  signEnvelope,
  verifyEnvelope,
} from '../../keys/index.ts';
import { signingChain } from './command.ts';
import { ControlError } from './control-error.ts';
import type { WireCode } from './wire-codes.ts';

export type ResultStatus = 'ok' | 'failed' | 'refused';

export interface ResultPayload {
  v: 1;
  /** The command id, or the id the refused envelope claimed (may be '' when unparsable). */
  command: string;
  /** sha256 of the command envelope's canonical form. */
  commandDigest: string;
  peer: string;
  status: ResultStatus;
  /** Error code for failed/refused. */
  code?: string;
  message?: string;
  /** What the action returned (bounded by the executor). */
  output?: unknown;
  startedAt: string;
  finishedAt: string;
}

export interface StatusPayload {
  v: 1;
  peer: string;
  fleet: string;
  at: string;
  /** AgentStatus, layers and services as the agent reports them. */
  agent: unknown;
  layers: unknown;
  services: unknown;
  groups: string[];
  /** What the peer reports about itself (hostname, arch, kernel, OS, addresses …): agent/remote/peer-facts.ts. */
  facts?: unknown;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function signResult(payload: ResultPayload, key: SigningKey, chain: readonly Certificate[]): Envelope {
  return signEnvelope({ type: 'result', payload: stripUndefined(payload), key, chain: signingChain(chain) });
}

export function signStatus(payload: StatusPayload, key: SigningKey, chain: readonly Certificate[]): Envelope {
  return signEnvelope({ type: 'status', payload: stripUndefined(payload), key, chain: signingChain(chain) });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function peerCode(e: KeysError): WireCode {
  return e.code === 'E_CERT_REVOKED' ? 'E_RESULT_PEER_REVOKED' : 'E_RESULT_SIGNATURE';
}

export interface VerifiedResult {
  payload: ResultPayload;
  signer: Certificate;
}

/**
 * Verifies a result for the operator: peer chain to the user root (not revoked), the signer's
 * peer id is the peer named, and the result answers exactly `expect` (command id and digest).
 */
export function verifyResult(
  env: Envelope | string | Uint8Array,
  o: {
    anchors: readonly Certificate[];
    crls?: readonly Crl[];
    at?: Date;
    expect?: { command: string; commandDigest: string };
  },
): VerifiedResult {
  let v: { payload: unknown; signer: Certificate };
  try {
    v = verifyEnvelope(env, { type: 'result', anchors: o.anchors, crls: o.crls, at: o.at });
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    throw new ControlError(peerCode(e), `Result refused: ${e.message}`, {
      cause: e,
      details: { keysCode: e.code },
    });
  }
  const p = v.payload;
  if (
    !isObject(p) ||
    p.v !== 1 ||
    typeof p.command !== 'string' ||
    typeof p.commandDigest !== 'string' ||
    typeof p.peer !== 'string' ||
    !['ok', 'failed', 'refused'].includes(p.status as string) ||
    typeof p.startedAt !== 'string' ||
    typeof p.finishedAt !== 'string'
  ) {
    throw new ControlError('E_RESULT_MALFORMED', 'Result payload is not the documented shape');
  }
  if (v.signer.peerId !== p.peer) {
    throw new ControlError(
      'E_RESULT_PEER',
      `Result claims peer ${p.peer} but is signed by ${v.signer.subject} (peer ${v.signer.peerId ?? '?'})`,
    );
  }
  if (
    o.expect !== undefined &&
    (p.command !== o.expect.command || p.commandDigest !== o.expect.commandDigest)
  ) {
    throw new ControlError(
      'E_RESULT_BINDING',
      `Result from ${p.peer} answers command ${p.command}/${p.commandDigest.slice(0, 12)}, expected ${o.expect.command}/${o.expect.commandDigest.slice(0, 12)}`,
    );
  }
  return { payload: p as unknown as ResultPayload, signer: v.signer };
}

export function verifyStatus(
  env: Envelope | string | Uint8Array,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): { payload: StatusPayload; signer: Certificate } {
  let v: { payload: unknown; signer: Certificate };
  try {
    v = verifyEnvelope(env, { type: 'status', anchors: o.anchors, crls: o.crls, at: o.at });
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    throw new ControlError(peerCode(e), `Status refused: ${e.message}`, { cause: e });
  }
  const p = v.payload;
  if (!isObject(p) || p.v !== 1 || typeof p.peer !== 'string' || v.signer.peerId !== p.peer) {
    throw new ControlError('E_RESULT_PEER', 'Status is malformed or not signed by the peer it names');
  }
  return { payload: p as unknown as StatusPayload, signer: v.signer };
}
