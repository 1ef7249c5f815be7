// Trust anchors from the certificate partition (a directory of `*.crt` / `*.pem` roots and
// optional `*.crl`), and the signed secure config verified against them. Format:
// doc/agent-config.md. Only self-signed roots are anchors: anything else in the partition
// is ignored, so a stray leaf certificate cannot become a root of trust.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Certificate, type Crl, readCertificates, readCrls, verifyEnvelope } from '../../keys/index.ts';
import { AgentError } from './agent-error.ts';

export interface Trust {
  anchors: Certificate[];
  crls: Crl[];
}

export interface SecureConfig {
  /** Hostname set in each sandbox's UTS namespace is the layer's; this is the machine's. */
  hostname?: string;
  /** group name → member layers; each group gets `group/<name>/` shared by its members. */
  groups: Record<string, { gid: number; layers: string[] }>;
  /** When present, only these layers may be activated. */
  allowLayers?: string[];
}

const MAX_SECURE_CONFIG = 1 << 20;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export async function loadTrust(dir: string): Promise<Trust> {
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
  const crls: Crl[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt') || name.endsWith('.pem')) {
      for (const c of await readCertificates(path)) {
        if ((c.role === 'vendor-root' || c.role === 'user-root') && c.isCA && c.subject === c.issuer)
          anchors.push(c);
      }
    } else if (name.endsWith('.crl')) crls.push(...(await readCrls(path)));
  }
  if (anchors.length === 0) {
    throw new AgentError('E_TRUST_ANCHORS', `No vendor-root or user-root certificate in ${dir}`, {
      path: dir,
    });
  }
  return { anchors, crls };
}

function badConfig(path: string, message: string): never {
  throw new AgentError('E_SECURE_CONFIG', `Invalid secure config ${path}: ${message}`, { path });
}

/** Verifies the envelope (type `config`, signed by a user or vendor) and checks its payload. */
export async function readSecureConfig(
  path: string,
  trust: Trust,
): Promise<{ config: SecureConfig; signer: Certificate }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new AgentError('E_SECURE_CONFIG', `Cannot read secure config ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  if (bytes.length > MAX_SECURE_CONFIG) badConfig(path, `larger than ${MAX_SECURE_CONFIG} bytes`);
  let verified: ReturnType<typeof verifyEnvelope>;
  try {
    verified = verifyEnvelope(new Uint8Array(bytes), {
      type: 'config',
      anchors: trust.anchors,
      crls: trust.crls,
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'E_SIGNATURE';
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
  if (typeof p !== 'object' || p === null || Array.isArray(p)) badConfig(path, 'payload is not an object');
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['v', 'hostname', 'groups', 'allowLayers'].includes(k)) badConfig(path, `unknown key ${k}`);
  }
  if (o.v !== 1) badConfig(path, 'key v: expected 1');
  const out: SecureConfig = { groups: {} };
  if (o.hostname !== undefined) {
    if (typeof o.hostname !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(o.hostname))
      badConfig(path, 'key hostname');
    out.hostname = o.hostname;
  }
  if (o.groups !== undefined) {
    if (typeof o.groups !== 'object' || o.groups === null) badConfig(path, 'key groups: expected an object');
    for (const [g, v] of Object.entries(o.groups as Record<string, unknown>)) {
      const e = v as { gid?: unknown; layers?: unknown };
      if (!NAME.test(g)) badConfig(path, `key groups.${g}: bad group name`);
      if (typeof e.gid !== 'number' || !Number.isInteger(e.gid) || e.gid < 1 || e.gid > 65533) {
        badConfig(path, `key groups.${g}.gid: expected an integer from 1 to 65533`);
      }
      if (!Array.isArray(e.layers) || !e.layers.every((l) => typeof l === 'string' && NAME.test(l))) {
        badConfig(path, `key groups.${g}.layers: expected an array of layer names`);
      }
      out.groups[g] = { gid: e.gid, layers: e.layers as string[] };
    }
  }
  if (o.allowLayers !== undefined) {
    if (!Array.isArray(o.allowLayers) || !o.allowLayers.every((l) => typeof l === 'string')) {
      badConfig(path, 'key allowLayers: expected an array of layer names');
    }
    out.allowLayers = o.allowLayers as string[];
  }
  return out;
}
