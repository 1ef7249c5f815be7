// The group memberships one peer holds (control/wire/membership.ts has the signed format),
// persisted beside the replay cache and re-verified on every use.
//
// On disk: `{"version": 1, "memberships": [envelope, …]}`. Version 0, the bare array written
// before versions, is read and rewritten as version 1 at load; a newer version is refused
// (E_STATE_VERSION) and anything else is E_STATE_CORRUPT, never read as "no memberships".
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stateVersionOf, writeJsonAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';
import type { Certificate, Crl, Envelope } from '../../keys/index.ts';
import {
  ControlError,
  envelopeDigest,
  type MembershipTrust,
  parseMembershipPayload,
  type VerifiedMembership,
  verifyMembership,
} from '../../control/wire/index.ts';

/** The version of memberships.json this agent writes. */
export const MEMBERSHIPS_VERSION = 1;

/**
 * The memberships one peer holds, persisted in `<stateDir>/memberships.json` (the envelopes,
 * re-verified on every use so a later CRL or expiry takes effect).
 */
export class MembershipStore {
  readonly #file: string;
  #envelopes: Envelope[] = [];

  constructor(stateDir: string) {
    this.#file = join(stateDir, 'memberships.json');
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.#envelopes = [];
      return;
    }
    const corrupt = (why: string): AgentError =>
      new AgentError('E_STATE_CORRUPT', `Cannot read memberships ${this.#file}: ${why}`, {
        path: this.#file,
      });
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw corrupt(`not JSON: ${(e as Error).message}`);
    }
    const version = stateVersionOf(raw, {
      what: 'memberships',
      path: this.#file,
      current: MEMBERSHIPS_VERSION,
      isLegacy: Array.isArray,
      error: (code, message, options) => new AgentError(code, message, options),
    });
    const list = version === 0 ? raw : (raw as { memberships?: unknown }).memberships;
    if (!Array.isArray(list)) throw corrupt('memberships is not a list');
    this.#envelopes = list as Envelope[];
    if (version < MEMBERSHIPS_VERSION) await this.#write(this.#envelopes);
  }

  async #write(envelopes: readonly Envelope[]): Promise<void> {
    await writeJsonAtomic(this.#file, { version: MEMBERSHIPS_VERSION, memberships: envelopes });
  }

  /** Verifies and keeps `env` if it is newer than what is held for its group. */
  async add(
    env: Envelope,
    o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date; fleet: string; peer: string },
  ): Promise<VerifiedMembership> {
    const v = verifyMembership(env, o);
    const held = this.#envelopes.map((e) => parseMembershipPayload(e.payload));
    const same = held.findIndex((p) => p.group === v.payload.group);
    const prev = held[same];
    if (prev !== undefined && Date.parse(prev.issuedAt) >= Date.parse(v.payload.issuedAt)) {
      // The same envelope again (a broker resend) is already applied.
      if (envelopeDigest(this.#envelopes[same] as Envelope) === envelopeDigest(env)) return v;
      // An older statement arriving late (or replayed by the broker) must not undo a newer one,
      // and must not be reported as applied: the operator would believe a state the peer lacks.
      throw new ControlError(
        'E_MEMBERSHIP_SUPERSEDED',
        `Membership of ${v.payload.group} signed at ${v.payload.issuedAt} is not newer than the one held (signed at ${prev.issuedAt}); not applied`,
        { details: { group: v.payload.group, issuedAt: v.payload.issuedAt, held: prev.issuedAt } },
      );
    }
    const next = this.#envelopes.filter((_, i) => i !== same);
    next.push(env);
    await this.#write(next);
    this.#envelopes = next;
    return v;
  }

  /**
   * Groups this peer is a member of now, from memberships that still verify. The answer is
   * reused for up to 10 s while the memberships and the CRL list are the same objects: each
   * re-verification costs two ML-DSA verifies per membership on every command otherwise.
   */
  groups(o: MembershipTrust): Map<string, Certificate> {
    const at = (o.at ?? new Date()).getTime();
    const c = this.#cache;
    if (
      c !== undefined &&
      c.crls === o.crls &&
      c.envelopes === this.#envelopes &&
      at >= c.at &&
      at - c.at < 10_000
    ) {
      return new Map(c.result);
    }
    const out = this.#compute(o);
    this.#cache = { crls: o.crls, envelopes: this.#envelopes, at, result: out };
    return new Map(out);
  }

  #cache:
    | {
        crls: readonly Crl[] | undefined;
        envelopes: Envelope[];
        at: number;
        result: Map<string, Certificate>;
      }
    | undefined;

  #compute(o: MembershipTrust): Map<string, Certificate> {
    const out = new Map<string, Certificate>();
    for (const env of this.#envelopes) {
      try {
        const v = verifyMembership(env, o);
        if (v.payload.member) out.set(v.payload.group, v.signer);
      } catch {
        // A membership whose operator was revoked since simply stops counting.
      }
    }
    return out;
  }

  envelopes(): readonly Envelope[] {
    return this.#envelopes;
  }
}
