// The operator's side (doc/commands.md, doc/how-to-manage-a-fleet.md): its config in
// ~/.config/mway/, the broker connection, signing commands and memberships, and collecting
// the peers' signed results. The broker is untrusted here too: peer certificates it hands
// out are checked against our anchors before a secret is sealed to them, and every result is
// verified and bound to the command before it counts.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type Certificate,
  type Crl,
  type Envelope,
  parseCertificates,
  readCertificates,
  readCrls,
  readPrivateKey,
  type SigningKey,
  sealSecret,
  tlsContextOptions,
  verifyChain,
} from '../../keys/index.ts';
import {
  type BrokerClient,
  buildCommand,
  type CommandAction,
  connectBroker,
  ControlError,
  envelopeDigest,
  LAYER_CHUNK_BYTES,
  MAX_INLINE_LAYER_BYTES,
  MAX_LAYER_SET,
  type Message,
  signingChain,
  secretContext,
  signMembership,
  verifyResult,
  verifyStatus,
} from '../wire/index.ts';
import { nextOperatorSeq } from './operator-seq.ts';
import { batchSize, failBudget, parseTarget, resolveTarget, usesFacts } from './targets.ts';
import { readRegularFile, schema, writeJsonAtomic } from '../../common/index.ts';
import { OperatorError, operatorError } from './operator-error.ts';

const { configObject, defineFormat, list, text, v } = schema;

const operatorConfigSchema = configObject({
  broker: text({ pattern: /^\[?[^\]]*?\]?:\d{1,5}$/, hint: 'is not host:port' }),
  fleet: text({ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, hint: 'is not a name' }),
  key: text({ hint: 'must be a file path' }),
  cert: text({ hint: 'must be a file path' }),
  anchors: v.optional(list(text(), 1000), []),
  crls: v.optional(list(text(), 1000), []),
  brokerFingerprint: v.exactOptional(
    text({ pattern: /^[0-9a-fA-F]{64}$/, hint: 'is not a sha256 hex fingerprint' }),
  ),
  /** NATS mode's audit stream, read by `mway audit --nats` as an auditor user (doc/nats.md). */
  nats: v.exactOptional(
    configObject({
      servers: v.pipe(
        list(text({ pattern: /^nats:\/\/[^\s/]+:\d{1,5}$/, hint: 'is not nats://host:port' }), 64),
        v.minLength(1, 'must name at least one server'),
      ),
      name: text({ pattern: /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, hint: 'is not an auditor name' }),
      nkey: v.exactOptional(text({ hint: 'must be a file path' })),
      /** PEM file of the CA of the NATS servers' TLS certificates. */
      ca: v.exactOptional(text({ hint: 'must be a file path' })),
    }),
  ),
});

/** ~/.config/mway/config.json (doc/commands.md, doc/operator-config.schema.json). */
export const operatorConfigFormat = defineFormat({
  name: 'operator-config',
  title: 'MilkyWay operator config (~/.config/mway/config.json)',
  schema: operatorConfigSchema,
  error: (issue, file) =>
    new OperatorError(
      'E_CONFIG',
      `Cannot read operator config ${file ?? ''}: ${issue.keyPath}: ${issue.problem}`,
      {
        ...(file === undefined ? {} : { path: file }),
        details: { field: issue.keyPath },
      },
    ),
});

export type OperatorConfig = Omit<schema.Output<typeof operatorConfigSchema>, '$schema'>;

export function configDir(): string {
  return (
    process.env.MWAY_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'mway')
  );
}

export async function readOperatorConfig(dir = configDir()): Promise<OperatorConfig> {
  const file = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new OperatorError(
      'E_CONFIG',
      `Cannot read ${file}: ${(e as Error).message}; run mway config init`,
      {
        cause: e,
        path: file,
      },
    );
  }
  const { $schema: _, ...cfg } = operatorConfigFormat.parse(raw, file);
  return cfg;
}

export async function writeOperatorConfig(cfg: OperatorConfig, dir = configDir()): Promise<string> {
  // What is written must read back: the same schema checks it first.
  operatorConfigFormat.parse(cfg, join(dir, 'config.json'));
  const abs = {
    ...cfg,
    key: resolve(cfg.key),
    cert: resolve(cfg.cert),
    anchors: cfg.anchors.map((a) => resolve(a)),
    crls: cfg.crls.map((c) => resolve(c)),
  };
  const file = join(dir, 'config.json');
  await writeJsonAtomic(file, abs, 0o600);
  return file;
}

async function expand(list: readonly string[], ext: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of list) {
    const st = await stat(p).catch((e: unknown) => {
      throw new OperatorError('E_CONFIG', `Cannot read ${p}, named in the config: ${(e as Error).message}`, {
        path: p,
        cause: e,
      });
    });
    if (st.isDirectory())
      out.push(
        ...(await readdir(p))
          .filter((n) => n.endsWith(ext))
          .sort()
          .map((n) => join(p, n)),
      );
    else out.push(p);
  }
  return out;
}

export interface PeerView {
  peerId: string;
  name: string;
  online: boolean;
  lastSeen: string | null;
  groups: string[];
  labels: Record<string, string>;
  certificate: string;
  status: unknown;
}

/**
 * `mway job cancel`: per peer whose delivery was open — `cancelled` (the peer claimed the id,
 * signed), `held back` (offline: the broker no longer delivers the job, the signed cancellation
 * waits for the peer), `already received` (it ran or is running), `refused` / `no answer`.
 */
export interface CancelReport {
  jobId: string;
  cancelJobId: string;
  peers: Array<{
    peer: string;
    outcome: 'cancelled' | 'held back' | 'already received' | 'refused' | 'no answer';
    code?: string;
    message?: string;
  }>;
}

/** What one peer did with a membership the operator signed (OperatorClient.changeMembers). */
export interface MemberReport {
  peer: string;
  outcome: 'applied' | 'refused' | 'offline' | 'no answer' | 'invalid';
  code?: string;
  message?: string;
}

export type PeerOutcome = 'ok' | 'failed' | 'refused' | 'invalid' | 'no answer' | 'skipped' | 'cancelled';

export interface PeerReport {
  peer: string;
  outcome: PeerOutcome;
  code?: string;
  message?: string;
  output?: unknown;
}

export interface JobReport {
  jobId: string;
  action: CommandAction;
  target: string;
  peers: PeerReport[];
  summary: { targeted: number; succeeded: number; failed: number; noAnswer: number };
  async?: boolean;
  dryRun?: boolean;
}

export interface RunOptions {
  action: CommandAction;
  args?: Record<string, unknown>;
  target: string;
  /** `N` or `N%` of the resolved targets. */
  batch?: string;
  maxFail?: string;
  timeoutMs?: number;
  ttlMs?: number;
  async?: boolean;
  dryRun?: boolean;
  /** Builds per-command arguments once the targets are known (secrets are sealed per peer). */
  argsFor?: (peers: PeerView[]) => Record<string, unknown>;
  onProgress?: (done: number, total: number, r: PeerReport) => void;
  /** The job was accepted by the broker for these peers (before any result). */
  onSubmitted?: (jobId: string, peers: readonly string[]) => void;
}

export class OperatorClient {
  readonly cfg: OperatorConfig;
  readonly key: SigningKey;
  readonly chain: Certificate[];
  readonly anchors: Certificate[];
  readonly crls: Crl[];
  readonly client: BrokerClient;
  readonly #dir: string;
  readonly #events = new Map<string, Message[]>();
  readonly #memberEvents = new Map<string, Message>();
  #wake: () => void = () => {};

  private constructor(o: {
    cfg: OperatorConfig;
    key: SigningKey;
    chain: Certificate[];
    anchors: Certificate[];
    crls: Crl[];
    client: BrokerClient;
    dir: string;
  }) {
    this.cfg = o.cfg;
    this.key = o.key;
    this.chain = o.chain;
    this.anchors = o.anchors;
    this.crls = o.crls;
    this.client = o.client;
    this.#dir = o.dir;
  }

  /** The anchors (self-signed roots) and CRLs the config names. */
  static async trust(cfg: OperatorConfig): Promise<{ anchors: Certificate[]; crls: Crl[] }> {
    const all: Certificate[] = [];
    for (const f of await expand(cfg.anchors, '.crt')) all.push(...(await readCertificates(f)));
    const crls: Crl[] = [];
    for (const f of await expand(cfg.crls, '.crl')) crls.push(...(await readCrls(f)));
    return { anchors: all.filter((c) => c.isCA), crls };
  }

  static async connect(cfg: OperatorConfig, dir = configDir()): Promise<OperatorClient> {
    const { anchors: roots, crls } = await OperatorClient.trust(cfg);
    const chain = await readCertificates(cfg.cert);
    if (chain[0]?.role !== 'operator')
      throw new OperatorError('E_CONFIG', `${cfg.cert} is not an operator certificate`);
    const key = await readPrivateKey(cfg.key);
    const holder: { self?: OperatorClient } = {};
    const early: Message[] = [];
    const client = await connectBroker({
      address: cfg.broker,
      tls: tlsContextOptions({ keyPath: cfg.key, certPath: cfg.cert, anchors: roots }),
      role: 'operator',
      ...(cfg.brokerFingerprint === undefined ? {} : { brokerFingerprint: cfg.brokerFingerprint }),
      onMessage: (m) => (holder.self === undefined ? early.push(m) : holder.self.#onMessage(m)),
    });
    const self = new OperatorClient({ cfg, key, chain, anchors: roots, crls, client, dir });
    holder.self = self;
    for (const m of early) self.#onMessage(m);
    return self;
  }

  #onMessage(m: Message): void {
    if (m.kind === 'membership-event') {
      this.#memberEvents.set(`${m.group as string}\0${m.peerId as string}`, m);
      this.#wake();
      return;
    }
    if (m.kind !== 'job-event') return;
    const id = m.jobId as string;
    const list = this.#events.get(id) ?? [];
    list.push(m);
    this.#events.set(id, list);
    this.#wake();
  }

  close(): void {
    this.client.close();
  }

  /** The next per-operator sequence number, persisted beside the config (operator-seq.ts). */
  nextSeq(): Promise<number> {
    return nextOperatorSeq(this.#dir, this.chain[0]?.fingerprint ?? '');
  }

  async peers(): Promise<PeerView[]> {
    const r = await this.client.request('peers-list');
    return (r.peers as PeerView[]) ?? [];
  }

  async groups(): Promise<Array<{ group: string; members: string[] }>> {
    return (
      ((await this.client.request('group-list')).groups as Array<{ group: string; members: string[] }>) ?? []
    );
  }

  async createGroup(group: string): Promise<void> {
    await this.client.request('group-create', { group });
  }

  async deleteGroup(group: string): Promise<void> {
    await this.client.request('group-delete', { group });
  }

  /** Signs one membership (or removal) and hands it to the broker without waiting for the peer. */
  async setMember(group: string, peerId: string, member: boolean): Promise<void> {
    await this.#sendMembership(group, peerId, member, false);
  }

  /** Signs one membership (or removal) and sends it; `watch` asks the broker to forward the peer's answer. */
  async #sendMembership(
    group: string,
    peerId: string,
    member: boolean,
    watch: boolean,
  ): Promise<{ membership: Envelope; reply: Record<string, unknown> }> {
    const membership = signMembership({
      fleet: this.cfg.fleet,
      group,
      peer: peerId,
      member,
      key: this.key,
      chain: this.chain,
    });
    const reply = await this.client.request(member ? 'membership-put' : 'membership-delete', {
      group,
      peerId,
      membership,
      ...(watch ? { watch } : {}),
    });
    return { membership, reply };
  }

  /**
   * Signs one membership (or removal) per peer, hands them to the broker and waits up to
   * `timeoutMs` for each online peer's signed answer. Peers the broker has never seen are
   * refused before anything is signed. The outcome per peer is what the peer signed:
   * `applied`, `refused` (its code), or `offline` / `no answer` (queued on the broker, delivered
   * when the peer is back), `invalid` when the answer does not verify.
   */
  async changeMembers(
    group: string,
    peerIds: readonly string[],
    member: boolean,
    o: { timeoutMs?: number; onProgress?: (r: MemberReport) => void } = {},
  ): Promise<MemberReport[]> {
    const known = new Set((await this.peers()).map((p) => p.peerId));
    const unknown = peerIds.filter((p) => !known.has(p));
    if (unknown.length > 0) {
      throw new OperatorError(
        'E_PEER_UNKNOWN',
        `The broker does not know ${unknown.join(', ')}; nothing was signed (see mway peers)`,
        { details: { peers: unknown } },
      );
    }
    const sent = new Map<string, { digest: string; online: boolean }>();
    for (const peerId of peerIds) {
      this.#memberEvents.delete(`${group}\0${peerId}`);
      const { membership, reply } = await this.#sendMembership(group, peerId, member, true);
      sent.set(peerId, { digest: envelopeDigest(membership), online: reply.online === true });
    }
    const done = new Map<string, MemberReport>();
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    const waiting = () => [...sent].filter(([p, x]) => x.online && !done.has(p));
    for (;;) {
      for (const [peer, x] of waiting()) {
        const m = this.#memberEvents.get(`${group}\0${peer}`);
        if (m === undefined) continue;
        const r = this.#memberReport(group, peer, x.digest, m);
        done.set(peer, r);
        o.onProgress?.(r);
      }
      if (waiting().length === 0 || Date.now() >= deadline) break;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(250, Math.max(1, deadline - Date.now())));
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return peerIds.map(
      (peer) =>
        done.get(peer) ??
        (sent.get(peer)?.online === true
          ? { peer, outcome: 'no answer' as const }
          : { peer, outcome: 'offline' as const }),
    );
  }

  /** The peer's signed answer to one membership, checked against what we signed. */
  #memberReport(group: string, peer: string, digest: string, m: Message): MemberReport {
    if (m.ack === undefined) {
      return {
        peer,
        outcome: 'invalid',
        code: 'E_RESULT_SIGNATURE',
        message: 'The answer carries no signed ack',
      };
    }
    try {
      const v = verifyResult(m.ack as Envelope, {
        anchors: this.anchors,
        crls: this.crls,
        expect: { command: `membership:${group}`, commandDigest: digest },
      });
      if (v.payload.peer !== peer)
        throw new ControlError('E_RESULT_PEER', `Broker filed ${v.payload.peer}'s answer under ${peer}`);
      if (v.payload.status === 'ok') return { peer, outcome: 'applied' };
      return {
        peer,
        outcome: 'refused',
        code: v.payload.code ?? 'E_MEMBERSHIP_INVALID',
        ...(v.payload.message === undefined ? {} : { message: v.payload.message }),
      };
    } catch (e) {
      return {
        peer,
        outcome: 'invalid',
        code: (e as { code?: string }).code ?? 'E_RESULT_SIGNATURE',
        message: (e as Error).message,
      };
    }
  }

  /** The facts in a peer's last status, if that status verifies against our anchors. */
  verifiedFacts(p: PeerView): Record<string, unknown> | undefined {
    if (p.status === null || p.status === undefined) return undefined;
    try {
      const s = verifyStatus(p.status as Envelope, { anchors: this.anchors, crls: this.crls }).payload;
      return s.peer === p.peerId
        ? ((s.facts ?? undefined) as Record<string, unknown> | undefined)
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** A peer certificate from the broker, accepted only if it chains to our anchors. */
  peerCertificate(p: PeerView): Certificate {
    const chain = parseCertificates(p.certificate);
    const leaf = verifyChain(chain, { anchors: this.anchors, crls: this.crls, roles: ['peer'] });
    if (leaf.peerId !== p.peerId) {
      throw new OperatorError(
        'E_PEER_CERT',
        `Broker gave a certificate for ${leaf.peerId} as peer ${p.peerId}`,
      );
    }
    return leaf;
  }

  /** Seals `values` to every peer: `{name: {peerId: sealed}}` (one command for all). */
  sealFor(
    peers: PeerView[],
    target: string,
    values: Record<string, string>,
  ): Record<string, Record<string, Envelope>> {
    const out: Record<string, Record<string, Envelope>> = {};
    for (const [name, value] of Object.entries(values)) {
      out[name] = {};
      for (const p of peers) {
        (out[name] as Record<string, Envelope>)[p.peerId] = sealSecret({
          plaintext: Buffer.from(value),
          recipient: this.peerCertificate(p),
          context: secretContext(this.cfg.fleet, target, name),
          key: this.key,
          chain: signingChain(this.chain),
        });
      }
    }
    return out;
  }

  /** Resolves, signs, submits and (unless async) collects one job. */
  async run(o: RunOptions): Promise<JobReport> {
    const fleet = await this.peers();
    // Facts count only from a status the peer signed and we verified (the broker's copy could lie).
    const withFacts = usesFacts(parseTarget(o.target));
    const resolved = resolveTarget(
      o.target,
      fleet.map((p) => ({
        id: p.peerId,
        groups: p.groups ?? [],
        labels: p.labels ?? {},
        ...(withFacts ? { facts: this.verifiedFacts(p) } : {}),
      })),
    );
    const targets = fleet.filter((p) => resolved.peers.includes(p.peerId));
    const base = { action: o.action, target: o.target };
    // Before --dry-run returns: a dry run resolves, and fails, exactly as the real run does.
    if (resolved.peers.length === 0)
      throw new OperatorError('E_TARGET_EMPTY', `Target ${o.target} matches no peer`);
    if (o.dryRun === true) {
      return {
        jobId: '',
        ...base,
        dryRun: true,
        peers: resolved.peers.map((peer) => ({ peer, outcome: 'no answer' as const })),
        summary: {
          targeted: resolved.peers.length,
          succeeded: 0,
          failed: 0,
          noAnswer: resolved.peers.length,
        },
      };
    }
    const args = o.argsFor === undefined ? (o.args ?? {}) : o.argsFor(targets);
    const command = buildCommand({
      action: o.action,
      args,
      audience: { fleet: this.cfg.fleet, target: o.target, groups: resolved.groups, peers: resolved.peers },
      seq: await this.nextSeq(),
      key: this.key,
      chain: this.chain,
      ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
    });
    const p = command.payload as { id: string; expiresAt: string };
    const digest = envelopeDigest(command);
    await this.client.request('command-submit', {
      jobId: p.id,
      command,
      targets: resolved.peers,
      expiresAt: p.expiresAt,
      watch: o.async !== true,
      ...(o.batch === undefined ? {} : { batch: batchSize(o.batch, resolved.peers.length) }),
      ...(o.maxFail === undefined ? {} : { maxFail: failBudget(o.maxFail, resolved.peers.length) }),
    });
    if (o.async === true) {
      return {
        jobId: p.id,
        ...base,
        async: true,
        peers: [],
        summary: {
          targeted: resolved.peers.length,
          succeeded: 0,
          failed: 0,
          noAnswer: resolved.peers.length,
        },
      };
    }
    o.onSubmitted?.(p.id, resolved.peers);
    const reports = await this.collect(p.id, digest, resolved.peers, o);
    return { jobId: p.id, ...base, peers: reports, summary: summarize(reports) };
  }

  /** Turns one broker job-event into a verified per-peer report. */
  report(m: Message, jobId: string, digest: string | undefined): PeerReport {
    const peer = m.peerId as string;
    if (m.result === undefined)
      return {
        peer,
        outcome: m.state === 'skipped' ? 'skipped' : m.state === 'cancelled' ? 'cancelled' : 'no answer',
        ...(typeof m.state === 'string' ? { code: `E_JOB_${m.state.toUpperCase()}` } : {}),
      };
    try {
      const v = verifyResult(m.result as Envelope, { anchors: this.anchors, crls: this.crls });
      const p = v.payload;
      if (p.command !== jobId) {
        throw new ControlError(
          'E_RESULT_BINDING',
          `Result from ${p.peer} answers command ${p.command}, not ${jobId}`,
        );
      }
      if (digest !== undefined && p.commandDigest !== digest) {
        // A signed refusal of a different envelope under our id is how tampering shows up: the
        // peer answers for what it received. Anything else bound elsewhere is not ours.
        if (p.status !== 'refused') {
          throw new ControlError(
            'E_RESULT_BINDING',
            `Result from ${p.peer} is bound to another envelope than the one signed`,
          );
        }
        return {
          peer,
          outcome: 'refused',
          code: p.code ?? 'E_CMD_SIGNATURE',
          message: `${p.message ?? ''} (the peer received an envelope that differs from the one signed)`,
        };
      }
      if (v.payload.peer !== peer)
        throw new ControlError('E_RESULT_PEER', `Broker filed ${v.payload.peer}'s result under ${peer}`);
      const r: PeerReport = { peer, outcome: v.payload.status };
      if (v.payload.code !== undefined) r.code = v.payload.code;
      if (v.payload.message !== undefined) r.message = v.payload.message;
      if (v.payload.output !== undefined) r.output = v.payload.output;
      return r;
    } catch (e) {
      return {
        peer,
        outcome: 'invalid',
        code: (e as { code?: string }).code ?? 'E_RESULT_SIGNATURE',
        message: (e as Error).message,
      };
    }
  }

  /** Waits for the watched job's results from `peers` (bounded by `timeoutMs`), each verified. */
  async collect(
    jobId: string,
    digest: string,
    peers: string[],
    o: Pick<RunOptions, 'timeoutMs' | 'onProgress'>,
  ): Promise<PeerReport[]> {
    const done = new Map<string, PeerReport>();
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    while (done.size < peers.length && Date.now() < deadline) {
      for (const m of this.#events.get(jobId)?.splice(0) ?? []) {
        const peer = m.peerId as string;
        if (!peers.includes(peer) || done.get(peer)?.outcome === 'ok') continue;
        const r = this.report(m, jobId, digest);
        done.set(peer, r);
        o.onProgress?.(done.size, peers.length, r);
      }
      if (done.size >= peers.length) break;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(250, Math.max(1, deadline - Date.now())));
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return peers.map((peer) => done.get(peer) ?? { peer, outcome: 'no answer' as const });
  }

  /** A job as the broker stores it, with every result re-verified here. */
  async job(jobId: string): Promise<JobReport> {
    const r = await this.client.request('job-get', { jobId });
    const job = r.job as {
      command?: Envelope;
      peers?: Array<Record<string, unknown>>;
      deliveries?: Array<Record<string, unknown>>;
    };
    const command = job.command;
    const digest = command === undefined ? undefined : envelopeDigest(command);
    const rows = job.peers ?? job.deliveries ?? [];
    const reports = rows.map((d) =>
      this.report(
        { v: 1, kind: 'job-event', ...d, ...(d.result === null ? { result: undefined } : {}) } as Message,
        jobId,
        digest,
      ),
    );
    const payload = (command?.payload ?? {}) as { action?: CommandAction; audience?: { target?: string } };
    return {
      jobId,
      action: payload.action ?? 'status',
      target: payload.audience?.target ?? '',
      peers: reports,
      summary: summarize(reports),
    };
  }

  /** The full id of the job `prefix` names (a unique prefix of a recent job's id is enough). */
  async resolveJobId(prefix: string): Promise<string> {
    if (/^[0-9a-f]{32}$/.test(prefix)) return prefix;
    if (!/^[0-9a-f]{1,31}$/.test(prefix))
      throw new OperatorError('E_USAGE', `${JSON.stringify(prefix)} is not a job id or a prefix of one`);
    const ids = ((await this.jobs(10_000)) as Array<{ jobId: string }>)
      .map((j) => j.jobId)
      .filter((id) => id.startsWith(prefix));
    if (ids.length === 1) return ids[0] as string;
    if (ids.length === 0) throw new ControlError('E_JOB_UNKNOWN', `No job starts with ${prefix}`);
    throw new OperatorError(
      'E_USAGE',
      `${prefix} names ${ids.length} jobs (${ids.slice(0, 3).join(', ')}…); give more of the id`,
    );
  }

  /**
   * Cancels what of a job has not run yet: signs a `job.cancel` for every peer whose delivery is
   * still open and submits it as the job's cancellation. The broker stops delivering the job at
   * once; each peer that receives the cancellation claims the id so the command never runs there
   * (or answers that it had it already). Offline peers get the cancellation when they return.
   */
  async cancel(jobId: string, o: { timeoutMs?: number } = {}): Promise<CancelReport> {
    const r = await this.client.request('job-get', { jobId });
    const job = r.job as { command: Envelope; peers: Array<{ peerId: string; state: string }> };
    const orig = job.command.payload as {
      expiresAt: string;
      audience: { target: string; groups: string[] };
    };
    const open = job.peers.filter((p) => p.state === 'queued' || p.state === 'pending').map((p) => p.peerId);
    if (open.length === 0) return { jobId, cancelJobId: '', peers: [] };
    const command = buildCommand({
      action: 'job.cancel',
      args: { job: jobId, until: orig.expiresAt },
      audience: {
        fleet: this.cfg.fleet,
        target: orig.audience.target,
        groups: orig.audience.groups,
        peers: open,
      },
      seq: await this.nextSeq(),
      key: this.key,
      chain: this.chain,
    });
    const p = command.payload as { id: string; expiresAt: string };
    const sub = await this.client.request('command-submit', {
      jobId: p.id,
      command,
      targets: open,
      expiresAt: p.expiresAt,
      watch: true,
      cancels: jobId,
    });
    const heldBack = new Set((sub.cancelled as string[] | undefined) ?? []);
    const reports = await this.collect(p.id, envelopeDigest(command), open, {
      timeoutMs: o.timeoutMs ?? 10_000,
    });
    const peers = reports.map((x): CancelReport['peers'][number] => {
      const state = (x.output as { state?: string } | undefined)?.state;
      if (x.outcome === 'ok' && state === 'cancelled') return { peer: x.peer, outcome: 'cancelled' };
      if (x.outcome === 'ok') return { peer: x.peer, outcome: 'already received' };
      if (x.outcome === 'no answer' && heldBack.has(x.peer)) return { peer: x.peer, outcome: 'held back' };
      return {
        peer: x.peer,
        outcome: x.outcome === 'no answer' ? 'no answer' : 'refused',
        ...(x.code === undefined ? {} : { code: x.code }),
        ...(x.message === undefined ? {} : { message: x.message }),
      };
    });
    return { jobId, cancelJobId: p.id, peers };
  }

  async jobs(limit = 50): Promise<unknown[]> {
    return ((await this.client.request('job-list', { limit })).jobs as unknown[]) ?? [];
  }
}

export function summarize(peers: readonly PeerReport[]): JobReport['summary'] {
  const succeeded = peers.filter((p) => p.outcome === 'ok').length;
  const noAnswer = peers.filter(
    (p) => p.outcome === 'no answer' || p.outcome === 'skipped' || p.outcome === 'cancelled',
  ).length;
  return { targeted: peers.length, succeeded, failed: peers.length - succeeded - noAnswer, noAnswer };
}

/** A layer file as inline chunks with its digest (the peer checks both). */
export async function layerArgs(path: string): Promise<Record<string, unknown>> {
  const bytes = await readRegularFile(path, { what: 'layer', error: operatorError });
  if (bytes.length > MAX_INLINE_LAYER_BYTES) {
    throw new OperatorError(
      'E_LAYER_TOO_LARGE',
      `${path} is ${bytes.length} bytes; inline layers are at most ${MAX_INLINE_LAYER_BYTES} bytes (use installLargeLayer)`,
    );
  }
  const chunks: string[] = [];
  for (let off = 0; off < bytes.length; off += LAYER_CHUNK_BYTES)
    chunks.push(bytes.subarray(off, off + LAYER_CHUNK_BYTES).toString('base64'));
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, chunks };
}

/** Bytes of a layer per `layer.chunk` command (see MAX_INLINE_LAYER_BYTES). */
export const COMMAND_CHUNK_BYTES = MAX_INLINE_LAYER_BYTES;

async function fileSha256(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Installs a layer too large for one command: one signed `layer.chunk` job per 2 MiB piece,
 * each to the same targets, then a `layer.install` bound to the whole file's digest. Stops at
 * the first piece that not every target stored; that job's report is returned.
 */
export async function installLargeLayer(
  c: OperatorClient,
  path: string,
  o: Omit<RunOptions, 'action' | 'args' | 'argsFor'>,
  onSent?: (done: number, total: number) => void,
): Promise<JobReport> {
  return sendInPieces(c, path, o, {
    chunk: 'layer.chunk',
    final: 'layer.install',
    ...(onSent === undefined ? {} : { onSent }),
  });
}

/**
 * A file sent as signed `chunk` commands of 2 MiB each, then the `final` command bound to the
 * whole file's digest and size (plus `extra` arguments); stops at the first piece not every
 * target stored and returns that job's report. Layers use it, and CoreOS update bundles.
 * `onSent` is told the bytes every target has stored so far (the CLI's upload progress).
 */
export async function sendInPieces(
  c: OperatorClient,
  path: string,
  o: Omit<RunOptions, 'action' | 'args' | 'argsFor'>,
  how: {
    chunk: CommandAction;
    final: CommandAction;
    extra?: Record<string, unknown>;
    /** More arguments of the first piece only (a bundle's downgrade permit: checked with its head). */
    headExtra?: Record<string, unknown>;
    onSent?: (done: number, total: number) => void;
  },
): Promise<JobReport> {
  const { sha256, size } = await fileSha256(path);
  const final = { sha256, size, ...how.extra };
  if (o.dryRun === true) return c.run({ ...o, action: how.final, args: final });
  const failed = await sendPieces(
    c,
    path,
    { sha256, size },
    o,
    how.chunk,
    (done) => how.onSent?.(done, size),
    how.headExtra,
  );
  return failed ?? c.run({ ...o, action: how.final, args: final });
}

/**
 * The file's signed `chunk` jobs, 2 MiB each; the report of the first piece not every target
 * stored, or undefined when all arrived. `onSent` gets the bytes stored so far.
 */
async function sendPieces(
  c: OperatorClient,
  path: string,
  id: { sha256: string; size: number },
  o: Omit<RunOptions, 'action' | 'args' | 'argsFor'>,
  chunk: CommandAction,
  onSent: (done: number) => void,
  headExtra?: Record<string, unknown>,
): Promise<JobReport | undefined> {
  const { sha256, size } = id;
  const fh = await open(path, 'r');
  try {
    for (let offset = 0; offset < size; offset += COMMAND_CHUNK_BYTES) {
      const buf = Buffer.alloc(Math.min(COMMAND_CHUNK_BYTES, size - offset));
      await fh.read(buf, 0, buf.length, offset);
      const r = await c.run({
        ...o,
        action: chunk,
        args: { sha256, size, offset, data: buf.toString('base64'), ...(offset === 0 ? headExtra : {}) },
      });
      if (r.summary.succeeded !== r.summary.targeted) return r;
      onSent(offset + buf.length);
    }
  } finally {
    await fh.close();
  }
  return undefined;
}

/**
 * Installs layers that belong together (a compose project's) in one rollout: every file's
 * pieces as signed `layer.chunk` jobs, then ONE `layer.install` naming each layer's digest and
 * size in `paths`' order, which each peer installs as a set (agent/remote/actions.ts). Stops
 * at the first piece not every target stored and returns that job's report.
 */
export async function installLayerSet(
  c: OperatorClient,
  paths: readonly string[],
  o: Omit<RunOptions, 'action' | 'args' | 'argsFor'>,
  onSent?: (done: number, total: number) => void,
): Promise<JobReport> {
  if (paths.length === 0 || paths.length > MAX_LAYER_SET)
    throw new OperatorError('E_USAGE', `A layer set holds 1..${MAX_LAYER_SET} layers, not ${paths.length}`);
  const ids = await Promise.all(paths.map((p) => fileSha256(p)));
  const final = { layers: ids.map(({ sha256, size }) => ({ sha256, size })) };
  if (o.dryRun === true) return c.run({ ...o, action: 'layer.install', args: final });
  const total = ids.reduce((n, x) => n + x.size, 0);
  let before = 0;
  for (const [i, path] of paths.entries()) {
    const id = ids[i] as { sha256: string; size: number };
    const failed = await sendPieces(c, path, id, o, 'layer.chunk', (done) => onSent?.(before + done, total));
    if (failed !== undefined) return failed;
    before += id.size;
  }
  return c.run({ ...o, action: 'layer.install', args: final });
}
