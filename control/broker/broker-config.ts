// The broker's configuration file (`milkywaysrvd --config FILE`, JSON, doc/broker.md).
// Relative paths are resolved against the directory of the config file so a config and its
// identity can be moved together. Unknown fields are refused so a typo is not silently
// ignored. The one definition is the schema below; doc/broker-config.schema.json is emitted.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorMessage, schema } from '../../common/index.ts';
import { BrokerError } from './broker-error.ts';

const { configObject, defineFormat, flag, int, object, text, v } = schema;

const DEFAULT_PORT = 7443;
/** The health endpoint's default: loopback, the port after the broker's. */
export const DEFAULT_HEALTH_LISTEN = '127.0.0.1:7444';
const file = () => text({ hint: 'must be a file path' });
const about = <S extends schema.Schema>(s: S, d: string) => v.pipe(s, v.description(d));

const brokerConfigSchema = configObject({
  listen: about(
    v.optional(text({ pattern: /^\[?[^\]]*?\]?:\d+$/, hint: 'is not host:port' }), `0.0.0.0:${DEFAULT_PORT}`),
    'host:port to listen on',
  ),
  key: about(file(), 'Broker private key (role broker), from keys/'),
  certificate: about(file(), 'Broker certificate chain (role broker)'),
  anchors: about(
    v.union(
      [
        file(),
        v.pipe(schema.list(file(), 1000), v.minLength(1, 'must name at least one user root certificate')),
      ],
      'must be a path or a list of paths',
    ),
    'Trust anchors (user root certificates): peers and operators must chain to one',
  ),
  crls: about(
    v.optional(v.union([file(), schema.list(file(), 1000)], 'must be a path or a list of paths'), []),
    'CRL files; a revoked peer or operator certificate is refused at hello',
  ),
  database: about(v.optional(file(), '/var/lib/milkyway/broker.db'), 'SQLite database file'),
  mdns: v.optional(
    object({
      enabled: v.optional(flag(), true),
      name: v.optional(
        text({ pattern: /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/, hint: 'must be a DNS label' }),
        'milkyway-broker',
      ),
      port: v.exactOptional(int(1, 65535, 'a UDP port')),
    }),
    {},
  ),
  expirySweepMs: about(v.optional(int(10, 600_000), 1000), 'How often expired commands are swept'),
  health: about(
    v.exactOptional(
      object({
        listen: about(
          v.optional(
            text({ pattern: /^\[?[^\]]*?\]?:\d+$/, hint: 'is not host:port' }),
            DEFAULT_HEALTH_LISTEN,
          ),
          'host:port of the HTTP listener; it answers only GET /healthz, without authentication',
        ),
      }),
    ),
    'Serve GET /healthz (200 ok, 503 unavailable) on a listener of its own; off without this key',
  ),
  nats: about(
    v.exactOptional(
      object({
        servers: v.pipe(
          schema.list(text({ pattern: /^nats:\/\/[^\s/]+:\d{1,5}$/, hint: 'is not nats://host:port' }), 64),
          v.minLength(1, 'must name at least one server'),
        ),
        replicas: v.optional(int(1, 5, 'a replica count'), 3),
        nkey: about(
          v.exactOptional(file()),
          "The broker's NATS nkey seed file (milkywaysrvd nats-user); its public key is the broker user in the servers' authorization block",
        ),
        ca: about(
          v.exactOptional(file()),
          "PEM file of the CA that issued the NATS servers' TLS certificates (without it: Node's CA store)",
        ),
      }),
    ),
    'NATS mode (doc/nats.md): peers get commands through this JetStream cluster',
  ),
});

/** `milkywaysrvd --config FILE` (doc/broker.md, doc/broker-config.schema.json). */
export const brokerConfigFormat = defineFormat({
  name: 'broker-config',
  title: 'MilkyWay broker config (milkywaysrvd --config)',
  schema: brokerConfigSchema,
  error: (issue, path) =>
    new BrokerError(
      'E_CONFIG',
      `Cannot read broker config ${path ?? ''}: ${issue.keyPath}: ${issue.problem}`,
      {
        ...(path === undefined ? {} : { path }),
        details: { field: issue.keyPath },
      },
    ),
});

type BrokerConfigFile = schema.Output<typeof brokerConfigSchema>;

export interface BrokerConfig
  extends Omit<BrokerConfigFile, '$schema' | 'listen' | 'anchors' | 'crls' | 'health'> {
  listen: { host: string; port: number };
  /** The health endpoint's address, when the config asks for one. */
  health?: { host: string; port: number };
  /** Absolute paths (relative ones resolve against the config file's folder). */
  anchors: string[];
  crls: string[];
}

export function parseListen(v: string, where = 'listen'): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(v);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BrokerError('E_CONFIG', `${where} ${JSON.stringify(v)} is not host:port`);
  }
  return { host: m[1] === '' ? '0.0.0.0' : (m[1] as string), port };
}

export function parseBrokerConfig(text: string, path: string): BrokerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BrokerError('E_CONFIG', `Cannot read broker config ${path}: not JSON: ${errorMessage(e)}`, {
      path,
    });
  }
  return validateBrokerConfig(json, path);
}

/** Checks a parsed config; `path` names it in errors and is the base of relative paths. */
export function validateBrokerConfig(json: unknown, path: string): BrokerConfig {
  const c = brokerConfigFormat.parse(json, path);
  const base = dirname(resolve(path));
  const abs = (p: string) => resolve(base, p);
  const paths = (x: string | string[]) => (typeof x === 'string' ? [x] : x).map(abs);
  const address = (field: string, value: string): { host: string; port: number } => {
    try {
      return parseListen(value);
    } catch {
      throw new BrokerError(
        'E_CONFIG',
        `Cannot read broker config ${path}: ${field}: ${schema.shown(value)} has no port from 0 to 65535`,
        { path, details: { field } },
      );
    }
  };
  const listen = address('listen', c.listen);
  const health = c.health === undefined ? undefined : address('health.listen', c.health.listen);
  if (health !== undefined && health.port !== 0 && health.port === listen.port && health.host === listen.host)
    throw new BrokerError(
      'E_CONFIG',
      `Cannot read broker config ${path}: health.listen: ${c.health?.listen} is the broker's own listen address`,
      { path, details: { field: 'health.listen' } },
    );
  return {
    listen,
    key: abs(c.key),
    certificate: abs(c.certificate),
    anchors: paths(c.anchors),
    crls: paths(c.crls),
    database: abs(c.database),
    mdns: c.mdns,
    expirySweepMs: c.expirySweepMs,
    ...(health === undefined ? {} : { health }),
    ...(c.nats === undefined
      ? {}
      : {
          nats: {
            ...c.nats,
            ...(c.nats.nkey === undefined ? {} : { nkey: abs(c.nats.nkey) }),
            ...(c.nats.ca === undefined ? {} : { ca: abs(c.nats.ca) }),
          },
        }),
  };
}

export async function readBrokerConfig(path: string): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BrokerError('E_CONFIG', `Cannot read broker config ${path}: ${errorMessage(e)}`, {
      path,
      cause: e,
    });
  }
  return parseBrokerConfig(text, path);
}
