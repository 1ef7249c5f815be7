// The peer side of a command, independent of the transport: check (command-check.ts), claim
// the id in the persisted replay cache, run the allow-listed action, and answer with a result
// signed by the peer key. Refusals are answered too (signed, status `refused`, with the code),
// so the operator sees that a hostile broker tried something. Memberships and status live here.
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { errorMessage, isMilkyWayError, type LogFields } from '../../common/index.ts';
import {
  envelopeDigest,
  type PeerFacts,
  type ResultPayload,
  type StatusPayload,
  signResult,
  signStatus,
} from '../../control/wire/index.ts';
import {
  type Certificate,
  type Crl,
  type Envelope,
  parseEnvelope,
  type SigningKey,
} from '../../keys/index.ts';
import type { AgentApi, CoreosStatus } from '../core/agent-api.ts';
import { runAction } from './actions.ts';
import { admitCommand, CANCELLED, type CheckedCommand, DEFAULT_SKEW_MS } from './command-check.ts';
import { MembershipStore } from './membership-store.ts';
import { gatherFacts } from './peer-facts.ts';
import { ReplayCache } from './replay-cache.ts';

export interface PeerIdentity {
  fleet: string;
  peerId: string;
  key: SigningKey;
  chain: Certificate[];
  kemPrivateKey: KeyObject;
  anchors: Certificate[];
  crls: Crl[];
}

/** The agent's log (agent/core/agent-log.ts): fields name the command, action, job, code. */
export type Log = (level: 'info' | 'warn' | 'error', message: string, fields?: LogFields) => void;

export interface Answer {
  result: Envelope;
  /** Run after the result was handed to the transport (reboot / poweroff). */
  after?: () => Promise<void>;
}

function idOf(input: unknown): string {
  try {
    const p = parseEnvelope(input as Envelope).payload as { id?: unknown };
    return typeof p?.id === 'string' && /^[0-9a-f]{32}$/.test(p.id) ? p.id : '';
  } catch {
    return '';
  }
}

/**
 * `coreos.slot`: the CoreOS slot this boot runs (`fact:coreos.slot=b` targets the peers an
 * update moved), beside the version, which the running slot's label gives where os-release
 * does not (an agent on a MilkyWayLinux disk it did not boot from).
 */
function slotFacts(
  coreos: PeerFacts['coreos'],
  c: CoreosStatus | undefined,
): { coreos?: NonNullable<PeerFacts['coreos']> } {
  if (c?.available !== true) return coreos === undefined ? {} : { coreos };
  const version = coreos?.version ?? c.slots.find((s) => s.slot === c.running)?.version ?? undefined;
  if (version === undefined) return coreos === undefined ? {} : { coreos };
  return { coreos: { ...coreos, image: coreos?.image ?? '', version, slot: c.running } };
}

export class PeerExecutor {
  readonly id: PeerIdentity;
  readonly #api: AgentApi;
  readonly #log: Log;
  readonly #skewMs: number;
  readonly memberships: MembershipStore;
  readonly replay: ReplayCache;
  readonly #spoolDir: string;
  /** Set by the peer link: stores and applies a pushed CRL (`crl.install`). */
  installCrl: ((der: Uint8Array) => Promise<unknown>) | undefined;

  constructor(o: {
    api: AgentApi;
    identity: PeerIdentity;
    stateDir: string;
    log: Log;
    skewMs?: number;
  }) {
    this.#api = o.api;
    this.id = o.identity;
    this.#log = o.log;
    this.#skewMs = o.skewMs ?? DEFAULT_SKEW_MS;
    this.memberships = new MembershipStore(o.stateDir);
    this.replay = new ReplayCache(o.stateDir);
    this.#spoolDir = join(o.stateDir, 'spool');
  }

  async load(): Promise<void> {
    await this.memberships.load();
    await this.replay.load();
  }

  #trust(now = new Date()) {
    return {
      anchors: this.id.anchors,
      crls: this.id.crls,
      at: now,
      fleet: this.id.fleet,
      peer: this.id.peerId,
    };
  }

  groups(): string[] {
    return [...this.memberships.groups(this.#trust()).keys()].sort();
  }

  /**
   * Verifies and stores a membership; a refusal is logged and reported as an error code. Either
   * way the answer carries `ack`, a result signed by this peer and bound to the membership's
   * digest (command `membership:GROUP`), so the operator learns what the peer did from the peer.
   */
  async membership(
    env: unknown,
    group: string,
  ): Promise<
    ({ ok: true; group: string } | { ok: false; code: string; message: string }) & { ack: Envelope }
  > {
    const startedAt = new Date().toISOString();
    let digest = '';
    try {
      digest = envelopeDigest(parseEnvelope(env as Envelope));
    } catch {
      // Unparsable: refused below; the ack binds to nothing but the group.
    }
    const ack = (status: 'ok' | 'refused', extra: { code?: string; message?: string }): Envelope =>
      this.#result({
        command: `membership:${group}`,
        commandDigest: digest,
        status,
        ...extra,
        startedAt,
        finishedAt: new Date().toISOString(),
      });
    try {
      const v = await this.memberships.add(parseEnvelope(env as Envelope), this.#trust());
      this.#log(
        'info',
        `membership of ${v.payload.group} ${v.payload.member ? 'held' : 'dropped'} (signed by ${v.signer.subject})`,
      );
      return { ok: true, group: v.payload.group, ack: ack('ok', {}) };
    } catch (e) {
      const code = isMilkyWayError(e) ? e.code : 'E_MEMBERSHIP_INVALID';
      this.#log('warn', `membership refused: ${code}: ${errorMessage(e)}`, { code });
      return {
        ok: false,
        code,
        message: errorMessage(e),
        ack: ack('refused', { code, message: errorMessage(e) }),
      };
    }
  }

  #result(p: Omit<ResultPayload, 'v' | 'peer'>): Envelope {
    // JSON round trip: drops undefined fields the agent's objects may carry (not canonical JSON).
    const clean = JSON.parse(JSON.stringify({ v: 1, peer: this.id.peerId, ...p })) as ResultPayload;
    return signResult(clean, this.id.key, this.id.chain);
  }

  /** Checks and runs one command envelope; always returns a signed answer. */
  async command(input: unknown): Promise<Answer> {
    const startedAt = new Date().toISOString();
    const now = new Date();
    let checked: CheckedCommand;
    try {
      checked = await admitCommand(input as Envelope, {
        anchors: this.id.anchors,
        crls: this.id.crls,
        fleet: this.id.fleet,
        peerId: this.id.peerId,
        peerChain: this.id.chain,
        groups: this.memberships.groups(this.#trust(now)),
        replay: this.replay,
        now,
        skewMs: this.#skewMs,
      });
    } catch (e) {
      // Anything not a ControlError/KeysError here is the peer's own state failing (the replay
      // cache could not be written): refused, because at-most-once cannot be promised.
      const code = isMilkyWayError(e) ? e.code : 'E_PEER_STATE';
      const command = idOf(input);
      this.#log('warn', `command ${command || '(unparsable)'} refused: ${code}: ${errorMessage(e)}`, {
        ...(command ? { command } : {}),
        code,
      });
      let digest = '';
      try {
        digest = envelopeDigest(parseEnvelope(input as Envelope));
      } catch {
        // Unparsable: nothing to bind to but the claimed id.
      }
      const previous = code === 'E_CMD_REPLAYED' ? this.replay.get(command) : undefined;
      return {
        result: this.#result({
          command,
          commandDigest: digest,
          status: 'refused',
          code,
          message: errorMessage(e),
          // A redelivery (e.g. after a broker restart) still gets the original answer.
          ...(previous?.result === undefined || previous.digest !== digest
            ? {}
            : { output: { previous: previous.result } }),
          startedAt,
          finishedAt: new Date().toISOString(),
        }),
      };
    }
    const p = checked.payload;
    this.#log(
      'info',
      `command ${p.id} ${p.action} from ${checked.operator.subject} (seq ${p.seq}) accepted`,
      {
        command: p.id,
        action: p.action,
        operator: checked.operator.subject,
      },
    );
    let answer: Answer;
    try {
      const out = await runAction(p, {
        api: this.#api,
        fleet: this.id.fleet,
        peerCert: this.id.chain[0] as Certificate,
        kemPrivateKey: this.id.kemPrivateKey,
        anchors: this.id.anchors,
        crls: this.id.crls,
        spoolDir: this.#spoolDir,
        ...(this.installCrl === undefined ? {} : { installCrl: this.installCrl }),
        cancel: async (id, keepUntil) =>
          (await this.replay.claim(id, { digest: CANCELLED, keepUntil })) ? 'cancelled' : 'already-received',
      });
      if (out.failure !== undefined)
        this.#log('warn', `command ${p.id} ${p.action} failed: ${out.failure.code}: ${out.failure.message}`, {
          command: p.id,
          action: p.action,
          code: out.failure.code,
        });
      answer = {
        result: this.#result({
          command: p.id,
          commandDigest: checked.digest,
          status: out.failure === undefined ? 'ok' : 'failed',
          ...(out.failure === undefined ? {} : out.failure),
          output: out.output ?? null,
          startedAt,
          finishedAt: new Date().toISOString(),
        }),
        ...(out.after === undefined ? {} : { after: out.after }),
      };
    } catch (e) {
      const code = isMilkyWayError(e) ? e.code : 'E_ACTION_FAILED';
      this.#log('warn', `command ${p.id} ${p.action} failed: ${code}: ${errorMessage(e)}`, {
        command: p.id,
        action: p.action,
        code,
      });
      answer = {
        result: this.#result({
          command: p.id,
          commandDigest: checked.digest,
          status: 'failed',
          code,
          message: errorMessage(e),
          startedAt,
          finishedAt: new Date().toISOString(),
        }),
      };
    }
    await this.replay.setResult(p.id, answer.result);
    return answer;
  }

  /** The periodic signed status: agent health, layer versions, services, held groups. */
  async status(): Promise<Envelope> {
    const [agent, layers, services, facts] = await Promise.all([
      this.#api.status(),
      this.#api.listLayers(),
      this.#api.listServices(),
      gatherFacts(),
    ]);
    const payload = JSON.parse(
      JSON.stringify({
        v: 1,
        peer: this.id.peerId,
        fleet: this.id.fleet,
        at: new Date().toISOString(),
        agent,
        // kind and a module's summary: what `mway module list` and the fleet's verbs come from.
        layers: layers.map((l) => ({
          name: l.name,
          version: l.version,
          state: l.state,
          kind: l.kind,
          ...(l.module === undefined ? {} : { module: l.module }),
        })),
        services: services.map((s) => ({
          name: s.name,
          state: s.state,
          restarts: s.restarts,
          ...(s.selinux === undefined ? {} : { selinux: s.selinux }),
        })),
        groups: this.groups(),
        facts: {
          ...facts,
          selinux: (agent as { selinux?: { mode?: string } }).selinux?.mode ?? 'off',
          ...slotFacts(facts.coreos, (agent as { coreos?: CoreosStatus }).coreos),
        },
      }),
    ) as StatusPayload;
    return signStatus(payload, this.id.key, this.id.chain);
  }
}
