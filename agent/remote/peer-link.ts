// The agent's link to the broker (doc/internal-apis.md, "agent/ ↔ control/"): connects over
// TLS 1.3 with the peer identity, reconnects with backoff, takes delivered commands and
// memberships, runs them through the peer executor (every check happens there, the broker is
// untrusted) and sends back the signed results and a periodic signed status.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, pathExists } from '../../common/index.ts';
import {
  browseBroker,
  connectBroker,
  connectNatsPeer,
  isId,
  isName,
  type Message,
  type PeerSession,
} from '../../control/wire/index.ts';
import {
  type Certificate,
  type Crl,
  checkCrls,
  type Envelope,
  readCertificates,
  readCrls,
  readKemPrivateKey,
  readPrivateKey,
  tlsContextOptions,
} from '../../keys/index.ts';
import type { AgentApi } from '../core/agent-api.ts';
import { AgentError } from '../core/agent-error.ts';
import { pushedCrlDir } from '../core/crl-list.ts';
import { ensureCrlStore, installCrl } from './crl-store.ts';
import { type Log, PeerExecutor } from './peer-executor.ts';
import { type EnrollConfig, enrollFiles, ensureIdentity } from './peer-identity.ts';

/** The agent config's `control` section (doc/commands.md, "Peer link configuration"). */
export interface PeerLinkConfig {
  /** `host:port` of the broker; without it (and without `nats`) the broker is found by mDNS. */
  broker?: string;
  /**
   * NATS mode instead of the TLS broker (doc/nats.md): `nats://host:port` URLs of the cluster's
   * servers, and the peer's nkey seed file (its NATS user, whose permissions the servers'
   * config sets). The same signed commands and results; the servers are as untrusted as a broker.
   * `domain`: the cluster's JetStream domain, for a peer behind a site's leaf node (doc/nats.md,
   * "A leaf node for a site"). `enrollNkey`: the shared nkey seed of the enrolling user, with
   * `enroll` and no certificate yet (doc/nats.md, "Enrolling through NATS"); with `enroll`,
   * `nkey` defaults to `peer.nk` in its dir and is made there if missing.
   */
  nats?: { servers: string[]; nkey?: string; domain?: string; enrollNkey?: string; ca?: string };
  /** Broker certificate fingerprint to require (optional pinning). */
  brokerFingerprint?: string;
  fleet: string;
  /**
   * Peer identity files: signing key, certificate chain (leaf first), ML-KEM key. Required
   * without `enroll`; with it they default to `peer.key`, `peer.crt`, `peer.kem.key` in its dir.
   */
  key: string;
  cert: string;
  kemKey: string;
  /** Enroll when there is no certificate yet (agent/remote/peer-identity.ts). */
  enroll?: EnrollConfig;
  /** Trust anchors: `.crt` files or directories of them (the user root). */
  anchors: string[];
  /** CRL files or directories of `.crl` files. */
  crls?: string[];
  skewMs?: number;
  statusIntervalMs?: number;
  /** Longest pause between reconnection attempts. */
  maxBackoffMs?: number;
  /** mDNS discovery: IPv4 address of the interface to query on, and the UDP port (tests). */
  mdnsInterface?: string;
  mdnsPort?: number;
}

function bad(key: string, message: string): never {
  throw new AgentError('E_LINK_CONFIG', `Invalid control config key ${key}: ${message}`, { path: key });
}

export function parsePeerLinkConfig(raw: unknown): PeerLinkConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('(control)', 'expected an object');
  const o = raw as Record<string, unknown>;
  const known = [
    'broker',
    'brokerFingerprint',
    'fleet',
    'key',
    'cert',
    'kemKey',
    'anchors',
    'crls',
    'skewMs',
    'statusIntervalMs',
    'maxBackoffMs',
    'mdnsInterface',
    'mdnsPort',
    'enroll',
    'nats',
  ];
  for (const k of Object.keys(o)) if (!known.includes(k)) bad(k, 'unknown key');
  const path = (k: string): string => {
    const v = o[k];
    if (typeof v !== 'string' || !v.startsWith('/')) bad(k, 'expected an absolute path');
    return v;
  };
  const paths = (k: string): string[] => {
    const v = o[k] ?? [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.startsWith('/')))
      bad(k, 'expected absolute paths');
    return v as string[];
  };
  const int = (k: string, min: number, max: number): number | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      bad(k, `expected ${min}..${max}`);
    return v;
  };
  if (!isName(o.fleet)) bad('fleet', 'expected a name');
  if (o.broker !== undefined && typeof o.broker !== 'string') bad('broker', 'expected host:port');
  if (
    o.brokerFingerprint !== undefined &&
    !(typeof o.brokerFingerprint === 'string' && /^[0-9a-f]{64}$/.test(o.brokerFingerprint))
  ) {
    bad('brokerFingerprint', 'expected 64 hex digits');
  }
  const nats = o.nats === undefined ? undefined : parseNats(o.nats);
  if (nats !== undefined && o.broker !== undefined)
    bad('nats', 'a peer uses either broker or nats, not both');
  const anchors = paths('anchors');
  if (anchors.length === 0) bad('anchors', 'at least one trust anchor is needed');
  const enroll = o.enroll === undefined ? undefined : parseEnroll(o.enroll);
  const files = enroll === undefined ? undefined : enrollFiles(enroll.dir);
  const file = (k: 'key' | 'cert' | 'kemKey'): string =>
    o[k] === undefined && files !== undefined ? files[k] : path(k);
  const out: PeerLinkConfig = {
    fleet: o.fleet,
    key: file('key'),
    cert: file('cert'),
    kemKey: file('kemKey'),
    anchors,
    crls: paths('crls'),
    ...(enroll === undefined ? {} : { enroll }),
  };
  if (typeof o.broker === 'string') out.broker = o.broker;
  // An enrolling machine makes its own NATS nkey beside its other keys unless told where it is.
  if (nats !== undefined)
    out.nats =
      enroll !== undefined && nats.nkey === undefined ? { ...nats, nkey: join(enroll.dir, 'peer.nk') } : nats;
  if (typeof o.brokerFingerprint === 'string') out.brokerFingerprint = o.brokerFingerprint;
  const skew = int('skewMs', 0, 900_000);
  if (skew !== undefined) out.skewMs = skew;
  const status = int('statusIntervalMs', 1000, 86_400_000);
  if (status !== undefined) out.statusIntervalMs = status;
  const backoff = int('maxBackoffMs', 100, 600_000);
  if (backoff !== undefined) out.maxBackoffMs = backoff;
  if (o.mdnsInterface !== undefined) {
    if (typeof o.mdnsInterface !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.mdnsInterface))
      bad('mdnsInterface', 'expected an IPv4 address');
    out.mdnsInterface = o.mdnsInterface;
  }
  const mport = int('mdnsPort', 1, 65535);
  if (mport !== undefined) out.mdnsPort = mport;
  return out;
}

function parseNats(raw: unknown): NonNullable<PeerLinkConfig['nats']> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('nats', 'expected an object');
  const n = raw as Record<string, unknown>;
  for (const k of Object.keys(n))
    if (!['servers', 'nkey', 'domain', 'enrollNkey', 'ca'].includes(k)) bad(`nats.${k}`, 'unknown key');
  for (const k of ['nkey', 'enrollNkey'])
    if (n[k] !== undefined && !(typeof n[k] === 'string' && n[k].startsWith('/')))
      bad(`nats.${k}`, 'expected the absolute path of an nkey seed file');
  if (n.ca !== undefined && !(typeof n.ca === 'string' && n.ca.startsWith('/')))
    bad('nats.ca', 'expected the absolute path of a PEM CA file');
  // A JetStream domain is one subject token of $JS.<domain>.API.
  if (n.domain !== undefined && !(typeof n.domain === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(n.domain)))
    bad('nats.domain', 'expected a JetStream domain name (1..64 of A-Z a-z 0-9 _ -)');
  const s = n.servers;
  if (
    !Array.isArray(s) ||
    s.length === 0 ||
    s.length > 64 ||
    !s.every((x) => typeof x === 'string' && /^nats:\/\/[^\s/]+:\d{1,5}$/.test(x))
  )
    bad('nats.servers', 'expected 1..64 URLs like nats://10.0.0.5:4222');
  return {
    servers: s as string[],
    ...(typeof n.nkey === 'string' ? { nkey: n.nkey } : {}),
    ...(typeof n.domain === 'string' ? { domain: n.domain } : {}),
    ...(typeof n.enrollNkey === 'string' ? { enrollNkey: n.enrollNkey } : {}),
    ...(typeof n.ca === 'string' ? { ca: n.ca } : {}),
  };
}

/**
 * The control section with every path mapped through `resolve` (the agent's `path()`): in
 * namespace mode `/identity/peer.key` means `<--root>/identity/peer.key`, like every other path
 * of the agent config. Anything that is not a string is left for parsePeerLinkConfig to refuse.
 */
export function resolveControlPaths(raw: unknown, resolve: (p: string) => string): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const o = { ...(raw as Record<string, unknown>) };
  const one = (v: unknown): unknown => (typeof v === 'string' && v.startsWith('/') ? resolve(v) : v);
  for (const k of ['key', 'cert', 'kemKey']) if (k in o) o[k] = one(o[k]);
  for (const k of ['anchors', 'crls']) if (Array.isArray(o[k])) o[k] = (o[k] as unknown[]).map(one);
  const e = o.enroll;
  if (typeof e === 'object' && e !== null && !Array.isArray(e)) {
    const d = (e as Record<string, unknown>).dir;
    const token = (e as Record<string, unknown>).token;
    o.enroll = {
      ...(e as Record<string, unknown>),
      dir: one(d),
      ...(token === undefined ? {} : { token: one(token) }),
    };
  }
  const n = o.nats;
  if (typeof n === 'object' && n !== null && !Array.isArray(n)) {
    const x = { ...(n as Record<string, unknown>) };
    for (const k of ['nkey', 'enrollNkey', 'ca']) if (k in x) x[k] = one(x[k]);
    o.nats = x;
  }
  return o;
}

function parseEnroll(raw: unknown): EnrollConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('enroll', 'expected an object');
  const e = raw as Record<string, unknown>;
  for (const k of Object.keys(e))
    if (!['dir', 'peerId', 'labels', 'pollMs', 'token'].includes(k)) bad(`enroll.${k}`, 'unknown key');
  if (typeof e.dir !== 'string' || !e.dir.startsWith('/')) bad('enroll.dir', 'expected an absolute path');
  const out: EnrollConfig = { dir: e.dir };
  if (e.token !== undefined) {
    if (typeof e.token !== 'string' || !e.token.startsWith('/'))
      bad('enroll.token', 'expected the absolute path of an enrollment token file');
    out.token = e.token;
  }
  if (e.peerId !== undefined) {
    if (!isId(e.peerId)) bad('enroll.peerId', 'expected a peer id');
    out.peerId = e.peerId;
  }
  if (e.labels !== undefined) {
    const l = e.labels;
    if (
      typeof l !== 'object' ||
      l === null ||
      Array.isArray(l) ||
      !Object.entries(l).every(([k, v]) => isId(k) && typeof v === 'string' && v.length <= 256)
    )
      bad('enroll.labels', 'expected {"key": "value"} with id keys');
    out.labels = l as Record<string, string>;
  }
  if (e.pollMs !== undefined) {
    if (typeof e.pollMs !== 'number' || !Number.isInteger(e.pollMs) || e.pollMs < 100 || e.pollMs > 3_600_000)
      bad('enroll.pollMs', 'expected 100..3600000');
    out.pollMs = e.pollMs;
  }
  return out;
}

/** Expands directories to their files with `ext`. */
async function files(list: readonly string[], ext: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of list) {
    try {
      const names = await readdir(p);
      out.push(
        ...names
          .filter((n) => n.endsWith(ext))
          .sort()
          .map((n) => join(p, n)),
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') out.push(p);
      else throw e;
    }
  }
  return out;
}

async function loadAnchors(list: readonly string[]): Promise<Certificate[]> {
  const out: Certificate[] = [];
  for (const f of await files(list, '.crt')) out.push(...(await readCertificates(f)));
  // Only self-signed roots are anchors; a leaf lying next to them must not become one.
  return out.filter((c) => c.isCA && (c.role === 'user-root' || c.role === 'vendor-root'));
}

/**
 * Every CRL of the configured files and directories, each read strictly and checked against the
 * anchors (issuer known, signature good): any failure throws, so the caller keeps the list it
 * had rather than a shorter one (a damaged file must not drop a revocation).
 */
async function loadCrls(list: readonly string[], anchors: readonly Certificate[]): Promise<Crl[]> {
  const out: Crl[] = [];
  for (const f of await files(list, '.crl')) out.push(...(await readCrls(f)));
  checkCrls(out, anchors);
  return out;
}

export interface PeerLink {
  stop(): Promise<void>;
  /** Connected to a broker right now. */
  readonly connected: boolean;
  readonly peerId: string;
}

export async function startPeerLink(options: {
  api: AgentApi;
  config: unknown;
  stateDir: string;
  log: Log;
  /**
   * From the cloud-init seed (agent/core/nocloud-apply.ts): used only where the config names
   * none — the broker when there is neither `broker` nor `nats`, the token when `enroll` has none.
   */
  seed?: { broker?: string; token?: Record<string, unknown> };
  /** Each time a session with the broker (or NATS) is up: the health gate's "broker reached". */
  onConnected?: (where: string) => void;
}): Promise<PeerLink> {
  const cfg = parsePeerLinkConfig(options.config);
  const log = options.log;
  const seed = options.seed;
  if (seed?.broker !== undefined && cfg.broker === undefined && cfg.nats === undefined) {
    cfg.broker = seed.broker;
    log('info', `control: broker ${seed.broker} from the cloud-init seed`, { broker: seed.broker });
  }
  if (seed?.token !== undefined && cfg.enroll !== undefined && cfg.enroll.token === undefined) {
    cfg.enroll = { ...cfg.enroll, tokenEnvelope: seed.token as unknown as Envelope };
    log('info', 'control: enrollment token from the cloud-init seed');
  }
  const anchors = await loadAnchors(cfg.anchors);
  if (anchors.length === 0)
    throw new AgentError('E_LINK_CONFIG', `No trust anchor found in ${cfg.anchors.join(', ')}`);
  // CRLs pushed by `mway crl push` live in the link's writable state, beside the configured ones;
  // the agent adds them to its own checks (layers, updates) from the same directory.
  const crlDir = await ensureCrlStore(pushedCrlDir(options.stateDir));
  const crlSources = [...(cfg.crls ?? []), crlDir];
  const crls = await loadCrls(crlSources, anchors);
  const files = { key: cfg.key, cert: cfg.cert, kemKey: cfg.kemKey };
  let stopped = false;
  let peerId = '';
  if (cfg.enroll === undefined || (await pathExists(cfg.cert))) {
    peerId = (await readLeaf(cfg.cert)).peerId as string;
  } else {
    await mkdir(cfg.enroll.dir, { recursive: true, mode: 0o700 });
  }
  let client: PeerSession | undefined;
  let wake: () => void = () => {};
  // Commands are run one at a time, in delivery order: actions on one machine must not race.
  let queue: Promise<void> = Promise.resolve();

  const main = async (): Promise<void> => {
    if (cfg.enroll !== undefined) {
      const ok = await ensureIdentity({
        files,
        enroll: cfg.enroll,
        anchors,
        broker: () => brokerAddress(cfg, log),
        ...(cfg.nats === undefined ? {} : { nats: cfg.nats }),
        log,
        stopped: () => stopped,
        ...(cfg.maxBackoffMs === undefined ? {} : { maxBackoffMs: cfg.maxBackoffMs }),
      });
      if (!ok) return;
    }
    const chain = await readCertificates(cfg.cert);
    const leaf = await readLeaf(cfg.cert);
    peerId = leaf.peerId as string;
    const executor = new PeerExecutor({
      api: options.api,
      stateDir: join(options.stateDir, 'control'),
      log,
      ...(cfg.skewMs === undefined ? {} : { skewMs: cfg.skewMs }),
      identity: {
        fleet: cfg.fleet,
        peerId,
        key: await readPrivateKey(cfg.key),
        chain,
        kemPrivateKey: await readKemPrivateKey(cfg.kemKey),
        anchors,
        crls,
      },
    });
    await executor.load();
    executor.installCrl = async (der) => {
      const r = await installCrl({
        der,
        dir: crlDir,
        anchors,
        inForce: executor.id.crls,
      });
      // In force for the very next check: this command's result, memberships, later commands.
      executor.id.crls = await loadCrls(crlSources, anchors);
      log('info', `control: CRL of ${r.issuer} (${r.thisUpdate}, ${r.serials} serial(s)) ${r.state}`, {
        peer: leaf.peerId,
        issuer: r.issuer,
        serials: r.serials,
        state: r.state,
      });
      return { ...r, crlsInForce: executor.id.crls.length };
    };
    const tls = tlsContextOptions({ keyPath: cfg.key, certPath: cfg.cert, anchors });

    const sendStatus = async (c: PeerSession): Promise<void> => {
      try {
        c.send('status', { status: await executor.status() });
      } catch (e) {
        log('warn', `control: cannot send status: ${errorMessage(e)}`, { peer: leaf.peerId, ...codeOf(e) });
      }
    };

    // A CRL dropped into the certificate directory takes effect at the next command, without a
    // restart. If the files cannot be read the previous list stays in force (and it is logged).
    const refreshCrls = async (): Promise<void> => {
      try {
        executor.id.crls = await loadCrls(crlSources, anchors);
      } catch (e) {
        log('warn', `control: cannot reload CRLs, keeping the previous ones: ${errorMessage(e)}`, {
          peer: leaf.peerId,
          ...codeOf(e),
        });
      }
    };

    const onMessage = (c: PeerSession, m: Message): void => {
      if (m.kind === 'command-deliver') {
        const jobId = m.jobId as string;
        try {
          c.send('command-ack', { jobId });
        } catch {
          // The result is what counts; a lost ack only means a redelivery, which the replay cache absorbs.
        }
        const run = async (): Promise<void> => {
          await refreshCrls();
          const answer = await executor.command(m.command);
          const outcome = (answer.result.payload as { status: string }).status;
          try {
            c.send('result', { jobId, result: answer.result, outcome });
          } catch (e) {
            log(
              'warn',
              `control: result of job ${jobId} not sent (${errorMessage(e)}); it is kept for redelivery`,
              { job: jobId, peer: leaf.peerId, ...codeOf(e) },
            );
          }
          if (answer.after !== undefined) {
            // Give the result a moment on the wire before the machine goes down.
            await new Promise((r) => setTimeout(r, 300));
            await answer
              .after()
              .catch((e) =>
                log('error', `control: ${errorMessage(e)}`, { job: jobId, peer: leaf.peerId, ...codeOf(e) }),
              );
          }
        };
        // A cancellation must overtake what it cancels, which may be waiting in this very queue:
        // it only claims an id in the replay cache (whose claims are atomic), so it runs now.
        // Its signature and scope are checked like any command's; the peek only picks the lane.
        // `coreos.cancel` likewise: it must reach an install that is writing the slot now.
        const lane = (m.command as { payload?: { action?: unknown } } | undefined)?.payload?.action;
        if (lane === 'job.cancel' || lane === 'coreos.cancel') {
          void run().catch((e) =>
            log('error', `control: cancellation ${jobId} failed: ${errorMessage(e)}`, {
              job: jobId,
              peer: leaf.peerId,
              ...codeOf(e),
            }),
          );
          return;
        }
        queue = queue.then(run);
        // One failure (a full disk writing the replay cache) must not stall every later command.
        queue = queue.catch((e) =>
          log('error', `control: command of job ${jobId} failed: ${errorMessage(e)}`, {
            job: jobId,
            peer: leaf.peerId,
            ...codeOf(e),
          }),
        );
        return;
      }
      if (m.kind === 'membership-deliver') {
        const group = m.group as string;
        const op = m.op as string;
        if (m.membership === undefined) {
          // Only a signed statement changes what this peer holds; the broker cannot remove it either.
          log('warn', `control: unsigned membership ${op} for ${group} ignored`, {
            peer: leaf.peerId,
            group,
          });
          return;
        }
        // In line with the commands: one delivered after this membership is checked against it
        // (a group command right behind the membership that makes this peer a member).
        const membership = m.membership;
        const apply = () =>
          executor.membership(membership, group).then((r) => {
            try {
              c.send('membership-ack', {
                group,
                op,
                ok: r.ok,
                ack: r.ack,
                ...(r.ok ? {} : { code: r.code, message: r.message }),
              });
            } catch {
              // Acks are advisory.
            }
            if (r.ok) void sendStatus(c);
          });
        queue = queue.then(apply);
        queue = queue.catch((e) =>
          log('error', `control: membership ${op} for ${group} failed: ${errorMessage(e)}`, {
            peer: leaf.peerId,
            group,
            ...codeOf(e),
          }),
        );
      }
    };

    // One session at a time until stopped: what comes in goes to onMessage, the same for both
    // transports; status is sent on connect and every statusIntervalMs.
    const serve = async (c: PeerSession, where: string): Promise<void> => {
      client = c;
      log('info', `control: connected to ${where} as ${leaf.peerId}`, { peer: leaf.peerId, broker: where });
      options.onConnected?.(where);
      await sendStatus(c);
      const timer = setInterval(() => void sendStatus(c), cfg.statusIntervalMs ?? 60_000);
      const reason = await c.closed;
      clearInterval(timer);
      client = undefined;
      if (!stopped)
        log('warn', `control: connection to ${where} lost${reason ? `: ${reason.message}` : ''}`, {
          peer: leaf.peerId,
          broker: where,
          ...codeOf(reason),
        });
    };

    // The wait between attempts; stop() cuts it short through `wake`.
    const pause = (ms: number): Promise<void> =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });

    const natsLoop = async (
      servers: string[],
      nkey?: string,
      domain?: string,
      ca?: string,
    ): Promise<void> => {
      let backoff = 200;
      while (!stopped) {
        try {
          let ready: PeerSession | undefined;
          const early: Message[] = [];
          const c = await connectNatsPeer({
            servers,
            ...(nkey === undefined ? {} : { nkey }),
            ...(domain === undefined ? {} : { domain }),
            ...(ca === undefined ? {} : { ca }),
            peerId,
            groups: () => executor.groups(),
            cursorFile: join(options.stateDir, 'control', 'nats-cursor.json'),
            onMessage: (m) => (ready === undefined ? early.push(m) : onMessage(ready, m)),
            log,
          });
          ready = c;
          for (const m of early.splice(0)) onMessage(c, m);
          backoff = 200;
          await serve(c, `NATS ${servers.join(',')}`);
        } catch (e) {
          if (!stopped)
            log('warn', `control: cannot connect to NATS ${servers.join(',')}: ${errorMessage(e)}`, {
              peer: leaf.peerId,
              broker: `NATS ${servers.join(',')}`,
              ...codeOf(e),
            });
        }
        if (stopped) break;
        await pause(backoff);
        backoff = Math.min(cfg.maxBackoffMs ?? 30_000, backoff * 2);
      }
    };

    const loop = async (): Promise<void> => {
      if (cfg.nats !== undefined)
        return natsLoop(cfg.nats.servers, cfg.nats.nkey, cfg.nats.domain, cfg.nats.ca);
      let backoff = 200;
      const maxBackoff = cfg.maxBackoffMs ?? 30_000;
      while (!stopped) {
        const found = await brokerAddress(cfg, log);
        const address = found?.address;
        const pin = cfg.brokerFingerprint ?? (found as { fingerprint?: string } | undefined)?.fingerprint;
        if (address !== undefined) {
          try {
            // Frames may arrive in the same read as the welcome, before `c` exists: hold them.
            const early: Message[] = [];
            let ready: PeerSession | undefined;
            const c = await connectBroker({
              address,
              tls,
              role: 'peer',
              ...(pin === undefined ? {} : { brokerFingerprint: pin }),
              onMessage: (m) => (ready === undefined ? early.push(m) : onMessage(ready, m)),
            });
            ready = c;
            for (const m of early.splice(0)) onMessage(c, m);
            backoff = 200;
            await serve(c, `broker ${address}`);
          } catch (e) {
            if (!stopped)
              log('warn', `control: cannot connect to ${address}: ${errorMessage(e)}`, {
                peer: leaf.peerId,
                broker: address,
                ...codeOf(e),
              });
          }
        }
        if (stopped) break;
        await pause(backoff);
        backoff = Math.min(maxBackoff, backoff * 2);
      }
    };
    await loop();
  };
  const running = main().catch((e: unknown) => {
    // The link gives up only on what retrying cannot fix (a rejected enrollment, broken
    // identity files): the agent keeps running, without a broker.
    log('error', `control: peer link stopped: ${(e as { code?: string }).code ?? ''} ${errorMessage(e)}`, {
      ...(peerId === '' ? {} : { peer: peerId }),
      ...codeOf(e),
    });
  });

  return {
    get peerId() {
      return peerId;
    },
    get connected() {
      return client !== undefined;
    },
    async stop() {
      stopped = true;
      wake();
      client?.close();
      await running;
      await queue.catch(() => {});
    },
  };
}

async function readLeaf(certPath: string): Promise<Certificate> {
  const leaf = (await readCertificates(certPath))[0];
  if (leaf === undefined || leaf.role !== 'peer' || leaf.peerId === undefined) {
    throw new AgentError('E_LINK_CONFIG', `${certPath} is not a peer certificate with a peer id`);
  }
  return leaf;
}

/** An error's stable code as a log field (`code=E_…`), when it has one. */
function codeOf(e: unknown): { code?: string } {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? { code } : {};
}

/** The configured broker, or one found by mDNS. */
async function brokerAddress(
  cfg: PeerLinkConfig,
  log: Log,
): Promise<{ address: string; fingerprint?: string } | undefined> {
  if (cfg.broker !== undefined)
    return {
      address: cfg.broker,
      ...(cfg.brokerFingerprint === undefined ? {} : { fingerprint: cfg.brokerFingerprint }),
    };
  return discover(cfg, log);
}

/** Finds a broker by mDNS when the config names none (multicast-dns is loaded only then). */
async function discover(
  cfg: PeerLinkConfig,
  log: Log,
): Promise<{ address: string; fingerprint?: string } | undefined> {
  try {
    const found = await browseBroker({
      timeoutMs: 3000,
      ...(cfg.mdnsInterface === undefined ? {} : { interface: cfg.mdnsInterface }),
      ...(cfg.mdnsPort === undefined ? {} : { mdnsPort: cfg.mdnsPort }),
    });
    if (found === undefined) return undefined;
    // TLS still checks the chain to our anchors; the TXT fingerprint only pins which broker.
    return {
      address: found.address,
      ...(found.fingerprint === undefined ? {} : { fingerprint: found.fingerprint }),
    };
  } catch (e) {
    log('warn', `control: mDNS discovery failed: ${errorMessage(e)}`, codeOf(e));
    return undefined;
  }
}
