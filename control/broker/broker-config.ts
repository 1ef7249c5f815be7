// The broker's configuration file (`milkywaysrvd --config FILE`, JSON, doc/broker.md).
// Relative paths are resolved against the directory of the config file so a config and its
// identity can be moved together. Unknown fields are refused so a typo is not silently
// ignored.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorMessage } from '../../common/index.ts';
import { ControlError } from '../wire/index.ts';

export interface BrokerConfig {
  /** `host:port` to listen on (default 0.0.0.0:7443). */
  listen: { host: string; port: number };
  /** Broker private key and certificate (role broker) from keys/. */
  key: string;
  certificate: string;
  /** Trust anchors (user root certificates): peers and operators must chain to one. */
  anchors: string[];
  /** CRL files; a revoked peer or operator certificate is refused at hello. */
  crls: string[];
  /** SQLite database file (default /var/lib/milkyway/broker.db). */
  database: string;
  mdns: { enabled: boolean; name: string; port?: number };
  expirySweepMs: number;
}

const FIELDS = ['listen', 'key', 'certificate', 'anchors', 'crls', 'database', 'mdns', 'expirySweepMs'];
const DEFAULT_PORT = 7443;

function bad(path: string, field: string, why: string): ControlError {
  return new ControlError('E_CONFIG', `Broker config ${path}: ${field} ${why}`, { path });
}

export function parseListen(v: string, where = 'listen'): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(v);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ControlError('E_CONFIG', `${where} ${JSON.stringify(v)} is not host:port`);
  }
  return { host: m[1] === '' ? '0.0.0.0' : (m[1] as string), port };
}

export function parseBrokerConfig(text: string, path: string): BrokerConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ControlError('E_CONFIG', `Broker config ${path} is not JSON: ${errorMessage(e)}`, { path });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw bad(path, 'the file', 'is not a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.includes(k)) throw bad(path, k, 'is not a known field');
  const base = dirname(resolve(path));
  const file = (field: string, x: unknown): string => {
    if (typeof x !== 'string' || x === '') throw bad(path, field, 'must be a file path');
    return resolve(base, x);
  };
  const files = (field: string, x: unknown): string[] => {
    if (x === undefined) return [];
    const list = typeof x === 'string' ? [x] : x;
    if (!Array.isArray(list)) throw bad(path, field, 'must be a path or a list of paths');
    return list.map((p, i) => file(`${field}[${i}]`, p));
  };
  let listen = { host: '0.0.0.0', port: DEFAULT_PORT };
  if (o.listen !== undefined) {
    if (typeof o.listen !== 'string') throw bad(path, 'listen', 'must be "host:port"');
    listen = parseListen(o.listen, `Broker config ${path}: listen`);
  }
  const anchors = files('anchors', o.anchors);
  if (anchors.length === 0) throw bad(path, 'anchors', 'must name at least one user root certificate');
  const m = (o.mdns ?? {}) as Record<string, unknown>;
  if (typeof m !== 'object' || Array.isArray(m)) throw bad(path, 'mdns', 'must be an object');
  for (const k of Object.keys(m))
    if (!['enabled', 'name', 'port'].includes(k)) throw bad(path, `mdns.${k}`, 'is not a known field');
  if (m.enabled !== undefined && typeof m.enabled !== 'boolean')
    throw bad(path, 'mdns.enabled', 'must be true or false');
  if (
    m.name !== undefined &&
    (typeof m.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(m.name))
  ) {
    throw bad(path, 'mdns.name', 'must be a DNS label');
  }
  if (
    m.port !== undefined &&
    (!Number.isInteger(m.port) || (m.port as number) < 1 || (m.port as number) > 65535)
  ) {
    throw bad(path, 'mdns.port', 'must be a UDP port');
  }
  const sweep = o.expirySweepMs ?? 1000;
  if (!Number.isInteger(sweep) || (sweep as number) < 10 || (sweep as number) > 600_000) {
    throw bad(path, 'expirySweepMs', 'must be an integer from 10 to 600000');
  }
  return {
    listen,
    key: file('key', o.key),
    certificate: file('certificate', o.certificate),
    anchors,
    crls: files('crls', o.crls),
    database: o.database === undefined ? '/var/lib/milkyway/broker.db' : file('database', o.database),
    mdns: {
      enabled: m.enabled !== false,
      name: (m.name as string | undefined) ?? 'milkyway-broker',
      ...(m.port === undefined ? {} : { port: m.port as number }),
    },
    expirySweepMs: sweep as number,
  };
}

export async function readBrokerConfig(path: string): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ControlError('E_CONFIG', `Cannot read broker config ${path}: ${errorMessage(e)}`, {
      path,
      cause: e,
    });
  }
  return parseBrokerConfig(text, path);
}
