// Trust anchors from the certificate partition (a directory of `*.crt` / `*.pem` roots and
// optional `*.crl`), and the signed secure config verified against them. Format:
// doc/agent-config.md; the secure config's one definition is the schema below
// (doc/secure-config.schema.json is emitted from it). Only self-signed roots are anchors:
// anything else in the partition is ignored, so a stray leaf certificate cannot become a
// root of trust.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegularFile, schema } from '../../common/index.ts';
import { type Certificate, type Crl, readCertificates, verifyEnvelope } from '../../keys/index.ts';
import { type CrlList, loadCrlList, readPushedCrls, withCrls } from './crl-list.ts';
import { AgentError } from './agent-error.ts';

const { configObject, defineFormat, int, list, object, record, text, v } = schema;

export interface Trust {
  anchors: Certificate[];
  crls: Crl[];
  /** How the CRL list was made: files refused with their codes, and the last good list kept. */
  crlList?: Omit<CrlList, 'crls'>;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const layerName = () => text({ pattern: NAME, hint: 'is not a layer name' });

/** The secure config's keys but `v`; the image spec checks its `secureConfig` with them too. */
export const SECURE_CONFIG_ENTRIES = {
  hostname: v.pipe(
    v.exactOptional(text({ pattern: /^[A-Za-z0-9.-]{1,253}$/, hint: 'is not a host name' })),
    v.description("The machine's host name (each sandbox's UTS namespace gets its layer's)"),
  ),
  groups: v.pipe(
    v.optional(
      record(
        text({ pattern: NAME, hint: 'is not a group name' }),
        object({ gid: int(1, 65533, 'a group id'), layers: list(layerName(), 1000) }),
        1000,
      ),
      {},
    ),
    v.description('group name → its gid and member layers; each group gets data/group/<name>/'),
  ),
  allowLayers: v.pipe(
    v.exactOptional(list(text({ max: 255 }))),
    v.description('When present, only these layers may be activated'),
  ),
};

const secureConfigSchema = configObject({ v: v.literal(1, 'expected 1'), ...SECURE_CONFIG_ENTRIES });

/** The secure config's payload (doc/agent-config.md, doc/secure-config.schema.json). */
export const secureConfigFormat = defineFormat({
  name: 'secure-config',
  title: 'MilkyWay secure config (payload of a config envelope)',
  schema: secureConfigSchema,
  error: (issue, path) =>
    new AgentError(
      'E_SECURE_CONFIG',
      `Cannot read secure config ${path ?? ''}: ${issue.keyPath}: ${issue.problem}`,
      {
        ...(path === undefined ? {} : { path }),
        details: { key: issue.keyPath },
      },
    ),
});

export type SecureConfig = Omit<schema.Output<typeof secureConfigSchema>, '$schema' | 'v'>;

const MAX_SECURE_CONFIG = 1 << 20;

/**
 * Anchors and CRLs of the certificate partition. A damaged anchor file is an error (the agent
 * starts nothing); a damaged CRL file is reported and the last good CRL list at `lastGoodCrls`
 * is kept in force (agent/core/crl-list.ts). Files are taken by type: a FIFO, directory or
 * symlink named `*.crt` / `*.crl` is refused (E_NOT_REGULAR_FILE) without being opened.
 */
export async function loadTrust(dir: string, o: { lastGoodCrls?: string } = {}): Promise<Trust> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new AgentError('E_TRUST_ANCHORS', `Cannot read trust anchors in ${dir}: ${(e as Error).message}`, {
      path: dir,
      cause: e,
    });
  }
  const anchors: Certificate[] = [];
  const crlFiles: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt') || name.endsWith('.pem')) {
      for (const c of await readCertificates(path)) {
        if ((c.role === 'vendor-root' || c.role === 'user-root') && c.isCA && c.subject === c.issuer)
          anchors.push(c);
      }
    } else if (name.endsWith('.crl')) crlFiles.push(path);
  }
  if (anchors.length === 0) {
    throw new AgentError('E_TRUST_ANCHORS', `No vendor-root or user-root certificate in ${dir}`, {
      path: dir,
    });
  }
  if (o.lastGoodCrls === undefined) {
    // No fallback asked for (tools reading a certificate directory): every CRL must be good.
    const list = await loadCrlList(crlFiles, anchors, undefined);
    return { anchors, crls: list.crls };
  }
  const { crls, ...crlList } = await loadCrlList(crlFiles, anchors, o.lastGoodCrls);
  return { anchors, crls, crlList };
}

/**
 * `trust` (the certificate partition's) with the CRLs pushed to this peer (`dir`, see
 * pushedCrlDir) added: revocations only accumulate, so the result is at least as strict as the
 * partition's list. A pushed file that fails is reported among the CRL problems.
 */
export async function withPushedCrls(trust: Trust, dir: string): Promise<Trust> {
  const { good, problems } = await readPushedCrls(dir, trust.anchors);
  const base = trust.crlList ?? { problems: [], source: 'partition' as const, fromLastGood: 0 };
  return {
    ...trust,
    crls: withCrls(trust.crls, good),
    crlList: { ...base, problems: [...base.problems, ...problems], pushed: good.length },
  };
}

/** Verifies the envelope (type `config`, signed by a user or vendor) and checks its payload. */
export async function readSecureConfig(
  path: string,
  trust: Trust,
): Promise<{ config: SecureConfig; signer: Certificate }> {
  // By type before any read (a FIFO would hang the boot), and capped.
  const bytes = await readRegularFile(path, {
    what: 'secure config',
    readCode: 'E_SECURE_CONFIG',
    maxBytes: MAX_SECURE_CONFIG,
    tooLargeCode: 'E_SECURE_CONFIG',
    error: (code, message, options) => new AgentError(code, message, options),
  });
  let verified: ReturnType<typeof verifyEnvelope>;
  try {
    verified = verifyEnvelope(new Uint8Array(bytes), {
      type: 'config',
      anchors: trust.anchors,
      crls: trust.crls,
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'E_INTERNAL'; // keys/ throws only its coded errors; anything else is a bug
    throw new AgentError(
      'E_SECURE_CONFIG',
      `Secure config ${path} does not verify: ${code}: ${(e as Error).message}`,
      {
        path,
        cause: e,
        details: { check: code },
      },
    );
  }
  return { config: parseSecureConfig(verified.payload, path), signer: verified.signer };
}

export function parseSecureConfig(p: unknown, path: string): SecureConfig {
  const { $schema: _, v: _v, ...config } = secureConfigFormat.parse(p, path);
  return config;
}
