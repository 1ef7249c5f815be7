// Where a peer's identity comes from: files provisioned in its image (the peer-identity
// partition), or, when the config has an `enroll` section and no certificate is there yet,
// enrollment (Salt's key acceptance done with our PKI): the agent generates its ML-DSA-65 and
// ML-KEM-768 keys once, prints the key fingerprint on its console, sends a request signed by
// that key with its facts, and waits for an operator to accept it (`mway peers accept`). The
// certificate it gets back is checked against the anchors and the requested keys, then stored
// next to the keys, so one image serves many machines and nothing per-machine is baked in.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errorMessage, pathExists, readRegularFile, writeFileAtomic } from '../../common/index.ts';
import {
  type Certificate,
  type Envelope,
  generateKemKey,
  generateSigningKey,
  parseCertificates,
  rawPublicKey,
  readKemPrivateKey,
  readPrivateKey,
  writePrivateKey,
} from '../../keys/index.ts';
import {
  checkEnrollmentRequest,
  checkIssuedCertificate,
  createEnrollmentRequest,
  enrollOverNats,
  isId,
  keyFingerprint,
  MAX_TOKEN_BYTES,
  newNkeySeed,
  nkeyPublicKey,
  readNkeySeed,
} from '../../control/wire/index.ts';
import { AgentError } from '../core/agent-error.ts';
import { enrollPeer } from './enroll-peer.ts';
import { gatherFacts } from './peer-facts.ts';
import type { Log } from './peer-executor.ts';

/** The `enroll` section of the control config (doc/commands.md, "Peer link configuration"). */
export interface EnrollConfig {
  /** Writable directory for the generated keys and the issued certificate. */
  dir: string;
  /** Peer id to ask for (default: the hostname, or `mw-` and 12 hex digits of the key fingerprint). */
  peerId?: string;
  labels?: Record<string, string>;
  /** How often to ask the broker whether an operator answered (ms, default 5000). */
  pollMs?: number;
  /**
   * An operator-signed enrollment token file (`mway peers token create`), sent with the request
   * so `mway peers autosign` accepts it without a manual step. Read, not trusted: the autosigner
   * verifies it.
   */
  token?: string;
  /** The token itself (from the cloud-init seed; never from the config file); `token` wins. */
  tokenEnvelope?: Envelope;
}

/** The token file as the JSON envelope it holds (size-capped; a bad file is E_LINK_CONFIG). */
async function readToken(path: string): Promise<Envelope> {
  const bytes = await readRegularFile(path, {
    what: 'enrollment token',
    readCode: 'E_LINK_CONFIG',
    maxBytes: MAX_TOKEN_BYTES,
    tooLargeCode: 'E_LINK_CONFIG',
    error: (code, message, options) => new AgentError(code, message, options),
  });
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Envelope;
  } catch (e) {
    throw new AgentError(
      'E_LINK_CONFIG',
      `Enrollment token ${path} is not a JSON envelope: ${(e as Error).message}`,
      {
        path,
        cause: e,
      },
    );
  }
}

export interface IdentityFiles {
  key: string;
  cert: string;
  kemKey: string;
}

/** The files of an enrolling peer inside `enroll.dir`. */
export function enrollFiles(dir: string): IdentityFiles {
  return { key: join(dir, 'peer.key'), cert: join(dir, 'peer.crt'), kemKey: join(dir, 'peer.kem.key') };
}

/** The peer id a machine asks for: configured, its hostname when that is a real name, or key-derived. */
function suggestedId(cfg: EnrollConfig, fingerprint: string): string {
  if (cfg.peerId !== undefined) return cfg.peerId;
  const h = hostname();
  if (isId(h) && !['localhost', '(none)', 'localhost.localdomain'].includes(h)) return h;
  return `mw-${fingerprint.slice(0, 12)}`;
}

/**
 * The public key of the machine's NATS nkey seed at `file`, made (0600) if there is none yet: a
 * restart reuses it, so the key in a pending request stays the one the machine holds.
 */
async function ownNkey(file: string, log: Log): Promise<string> {
  if (!(await pathExists(file))) {
    const seed = await newNkeySeed();
    await writeFileAtomic(file, `${new TextDecoder().decode(seed)}\n`, 0o600);
    log('info', `control: generated a NATS nkey in ${file}`);
  }
  return nkeyPublicKey(await readNkeySeed(file));
}

/**
 * Makes sure `files` hold a certified identity: returns at once when the certificate exists,
 * otherwise generates the keys (once: a restart reuses them, so the fingerprint an operator
 * compared stays valid) and enrolls through `broker()` until accepted. A rejection throws
 * E_ENROLL_REJECTED; a broker that cannot be reached is retried with backoff.
 */
export async function ensureIdentity(o: {
  files: IdentityFiles;
  enroll: EnrollConfig;
  anchors: readonly Certificate[];
  broker: () => Promise<{ address: string; fingerprint?: string } | undefined>;
  /**
   * NATS mode: enroll through the cluster as its shared enrolling user instead (doc/nats.md).
   * The machine's own nkey seed (`nkey`) is made if missing; its public key goes in the request.
   */
  nats?: { servers: string[]; enrollNkey?: string; nkey?: string; ca?: string };
  log: Log;
  stopped: () => boolean;
  maxBackoffMs?: number;
}): Promise<boolean> {
  const { files, log } = o;
  if (await pathExists(files.cert)) return true;
  if (!(await pathExists(files.key)) || !(await pathExists(files.kemKey))) {
    const key = generateSigningKey('ml-dsa-65');
    const kem = generateKemKey();
    // KEM key first: a crash between the two leaves no signing key, so both are made again.
    await writePrivateKey(files.kemKey, kem.privateKey);
    await writePrivateKey(files.key, key);
    log('info', `control: generated a peer identity in ${o.enroll.dir}`);
  }
  const key = await readPrivateKey(files.key);
  const kem = await readKemPrivateKey(files.kemKey);
  const { createPublicKey } = await import('node:crypto');
  const kemPublic = rawPublicKey(createPublicKey(kem));
  const fingerprint = keyFingerprint(rawPublicKey(key.publicKey));
  const peerId = suggestedId(o.enroll, fingerprint);
  const token = o.enroll.token === undefined ? o.enroll.tokenEnvelope : await readToken(o.enroll.token);
  const natsKey = o.nats?.nkey === undefined ? undefined : await ownNkey(o.nats.nkey, log);
  let backoff = 500;
  while (!o.stopped()) {
    const request = createEnrollmentRequest({
      key,
      kemPublicKey: kemPublic,
      peerId,
      name: hostname(),
      ...(o.enroll.labels === undefined ? {} : { labels: o.enroll.labels }),
      facts: (await gatherFacts()) as unknown as Record<string, unknown>,
      ...(token === undefined ? {} : { token }),
      ...(natsKey === undefined ? {} : { natsKey }),
    });
    // The line to compare with `mway peers pending` before accepting.
    log('info', `control: enrolling as ${peerId}: key fingerprint ${fingerprint}`);
    const nats = o.nats;
    const found = nats === undefined ? await o.broker() : { address: nats.servers.join(', ') };
    if (found !== undefined) {
      try {
        const opts = { request, pollMs: o.enroll.pollMs ?? 5000, stopped: o.stopped };
        const r =
          nats === undefined
            ? await enrollPeer({
                ...opts,
                address: found.address,
                anchors: o.anchors,
                ...(found.fingerprint === undefined ? {} : { brokerFingerprint: found.fingerprint }),
              })
            : await enrollOverNats({
                ...opts,
                servers: nats.servers,
                nkey: nats.enrollNkey,
                ca: nats.ca,
                log,
              });
        if (r === undefined) return false;
        const chain = parseCertificates(r.certificate);
        // The broker is untrusted: the certificate must chain to our anchors and be for our keys.
        const leaf = checkIssuedCertificate(checkEnrollmentRequest(request), chain, { anchors: o.anchors });
        await writeFileAtomic(files.cert, r.certificate, 0o644);
        log('info', `control: enrolled: certified as ${leaf.peerId ?? '?'} (${leaf.subject})`);
        return true;
      } catch (e) {
        const code = (e as { code?: string }).code;
        // Rejected stays rejected (the request id is the key's): asking again would not help.
        if (code === 'E_ENROLL_REJECTED') throw e;
        log('warn', `control: enrollment through ${found.address} failed: ${errorMessage(e)}`);
      }
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(o.maxBackoffMs ?? 30_000, backoff * 2);
  }
  return false;
}
