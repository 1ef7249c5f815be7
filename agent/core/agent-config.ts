// The agent's local config file (JSON, unsigned): where things are, and what the host
// allows. What to run is not here: that comes from signed layers and the signed secure
// config. Format: doc/agent-config.md. Every path is inside `root` (the agent's view of
// `/`), so the same file works as PID 1 (root "/") and in namespace mode (--root DIR).
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { AgentError } from './agent-error.ts';

export interface LogConfig {
  /** Lines kept in memory per service. */
  ringLines: number;
  /** A log file is rotated when it reaches this size. */
  fileBytes: number;
  /** Rotated files kept per service (`name.log.1` … `name.log.N`). */
  files: number;
  /** Lines per second per service beyond which lines are dropped (and counted). */
  rateLinesPerSecond: number;
}

/** A filesystem PID 1 mounts before reading anything else (the image's partitions). */
export interface MountEntry {
  /** A device path, or `PARTLABEL=<GPT partition name>`. */
  source: string;
  /** Mount point inside `root`. */
  target: string;
  type: string;
  /** mount -o options; `ro` for the certificate and secure-config partitions. */
  options: string;
}

export interface AgentConfig {
  /** The agent's root directory; every path below is resolved inside it. */
  root: string;
  /** Runtime state: overlay mounts, sockets, install staging (tmpfs on a real system). */
  stateDir: string;
  /** Certificate partition: `*.crt` trust anchors (vendor and user roots) and optional `*.crl`. */
  trustAnchorsDir: string;
  /** The signed secure config (an envelope of type `config`). */
  secureConfig: string;
  /** Layer storage: `<name>.mwl` files. */
  layersDir: string;
  /** Data partition: `secure/<layer>`, `group/<group>`, `common/`, `logs/`. */
  dataDir: string;
  /** Read-only base every app's overlay sits on (the CoreOS root). */
  baseDir: string;
  /** Activate layers with a userspace verity check when the kernel has no device-mapper. */
  allowUserspaceVerity: boolean;
  /** cgroup v2 directory under which the agent makes one cgroup per service. */
  cgroupRoot: string;
  /** Milliseconds a service gets after SIGTERM before SIGKILL (default when its manifest has none). */
  stopTimeoutMs: number;
  logs: LogConfig;
  /** Partitions to mount at boot, in order; unmounted in reverse at shutdown. */
  mounts: MountEntry[];
  /** Serve the local API on D-Bus; `address` undefined → the system bus. */
  dbus?: { address?: string };
  /** The peer link's settings, passed as is to agent/remote/peer-link.ts. */
  control?: Record<string, unknown>;
}

const DEFAULTS = {
  stateDir: '/run/milkyway',
  trustAnchorsDir: '/certs',
  secureConfig: '/config/secure.json',
  layersDir: '/layers',
  dataDir: '/data',
  baseDir: '/',
  allowUserspaceVerity: false,
  cgroupRoot: '/sys/fs/cgroup/milkyway',
  stopTimeoutMs: 10_000,
  logs: { ringLines: 1000, fileBytes: 1 << 20, files: 3, rateLinesPerSecond: 10_000 },
} as const;

const PATH_KEYS = ['stateDir', 'trustAnchorsDir', 'secureConfig', 'layersDir', 'dataDir', 'baseDir'] as const;
const KNOWN = new Set<string>([
  'root',
  ...PATH_KEYS,
  'allowUserspaceVerity',
  'cgroupRoot',
  'stopTimeoutMs',
  'logs',
  'mounts',
  'dbus',
  'control',
]);

function bad(key: string, message: string, file: string | undefined): never {
  throw new AgentError('E_CONFIG_INVALID', `Invalid agent config key ${key}: ${message}`, {
    path: file ?? key,
    details: { key },
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pathValue(v: unknown, key: string, fallback: string, file: string | undefined): string {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || v === '' || v.includes('\0')) bad(key, 'expected a non-empty path', file);
  if (!isAbsolute(v)) bad(key, `expected an absolute path, got ${JSON.stringify(v)}`, file);
  return v;
}

function intValue(
  v: unknown,
  key: string,
  fallback: number,
  min: number,
  max: number,
  file?: string,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(key, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`, file);
  }
  return v;
}

/** Maps a path inside the agent's root to the host path. */
export function inRoot(config: Pick<AgentConfig, 'root'>, path: string): string {
  return config.root === '/' ? path : join(config.root, path);
}

/**
 * Validates a parsed config. `root` overrides the file's `root` (the `--root` flag).
 * Unknown keys are errors, so a typo cannot silently fall back to a default.
 */
export function parseAgentConfig(raw: unknown, options: { root?: string; file?: string } = {}): AgentConfig {
  const file = options.file;
  if (!isObject(raw)) bad('(top level)', 'expected a JSON object', file);
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) bad(key, 'unknown key', file);
  const root = resolve(options.root ?? pathValue(raw.root, 'root', '/', file));
  const paths = {} as Record<(typeof PATH_KEYS)[number], string>;
  for (const key of PATH_KEYS) paths[key] = pathValue(raw[key], key, DEFAULTS[key], file);
  if (raw.allowUserspaceVerity !== undefined && typeof raw.allowUserspaceVerity !== 'boolean') {
    bad('allowUserspaceVerity', 'expected true or false', file);
  }
  const logsRaw = raw.logs ?? {};
  if (!isObject(logsRaw)) bad('logs', 'expected an object', file);
  for (const key of Object.keys(logsRaw))
    if (!(key in DEFAULTS.logs)) bad(`logs.${key}`, 'unknown key', file);
  const logs: LogConfig = {
    ringLines: intValue(logsRaw.ringLines, 'logs.ringLines', DEFAULTS.logs.ringLines, 1, 1_000_000, file),
    fileBytes: intValue(logsRaw.fileBytes, 'logs.fileBytes', DEFAULTS.logs.fileBytes, 4096, 2 ** 40, file),
    files: intValue(logsRaw.files, 'logs.files', DEFAULTS.logs.files, 1, 100, file),
    rateLinesPerSecond: intValue(
      logsRaw.rateLinesPerSecond,
      'logs.rateLinesPerSecond',
      DEFAULTS.logs.rateLinesPerSecond,
      1,
      10_000_000,
      file,
    ),
  };
  const config: AgentConfig = {
    root,
    ...paths,
    allowUserspaceVerity: raw.allowUserspaceVerity === true,
    cgroupRoot: pathValue(raw.cgroupRoot, 'cgroupRoot', DEFAULTS.cgroupRoot, file),
    stopTimeoutMs: intValue(raw.stopTimeoutMs, 'stopTimeoutMs', DEFAULTS.stopTimeoutMs, 0, 600_000, file),
    logs,
    mounts: [],
  };
  if (raw.mounts !== undefined) {
    if (!Array.isArray(raw.mounts)) bad('mounts', 'expected an array', file);
    raw.mounts.forEach((m: unknown, i: number) => {
      const key = `mounts[${i}]`;
      if (!isObject(m)) bad(key, 'expected an object', file);
      for (const k of Object.keys(m)) {
        if (!['source', 'target', 'type', 'options'].includes(k)) bad(`${key}.${k}`, 'unknown key', file);
      }
      const str = (k: string, re: RegExp, what: string): string => {
        const v = m[k];
        if (typeof v !== 'string' || !re.test(v)) bad(`${key}.${k}`, what, file);
        return v;
      };
      config.mounts.push({
        source: str(
          'source',
          /^(\/dev\/[A-Za-z0-9/_.-]+|PARTLABEL=[A-Za-z0-9_.-]{1,36})$/,
          'expected /dev/… or PARTLABEL=name',
        ),
        target: pathValue(m.target, `${key}.target`, '', file),
        type: str('type', /^[a-z0-9]{1,16}$/, 'expected a filesystem type such as ext4'),
        options:
          m.options === undefined
            ? 'defaults'
            : str('options', /^[A-Za-z0-9=,_.-]{1,200}$/, 'expected mount options'),
      });
    });
  }
  if (raw.dbus !== undefined) {
    if (!isObject(raw.dbus)) bad('dbus', 'expected an object', file);
    for (const key of Object.keys(raw.dbus)) if (key !== 'address') bad(`dbus.${key}`, 'unknown key', file);
    const address = raw.dbus.address;
    if (address !== undefined && (typeof address !== 'string' || address === '')) {
      bad('dbus.address', 'expected a D-Bus address such as unix:path=/run/dbus/system_bus_socket', file);
    }
    config.dbus = address === undefined ? {} : { address };
  }
  if (raw.control !== undefined) {
    if (!isObject(raw.control)) bad('control', 'expected an object', file);
    config.control = raw.control;
  }
  return config;
}

/** Reads and validates the config file; E_CONFIG_READ / E_CONFIG_INVALID name the file and key. */
export async function readAgentConfig(path: string, options: { root?: string } = {}): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new AgentError('E_CONFIG_READ', `Cannot read agent config ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AgentError('E_CONFIG_INVALID', `Cannot parse agent config ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  return parseAgentConfig(raw, { ...options, file: path });
}
