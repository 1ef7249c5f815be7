// The agent's local config file (JSON, unsigned): where things are, and what the host
// allows. What to run is not here: that comes from signed layers and the signed secure
// config. Format: doc/agent-config.md; its one definition is the schema below, from which
// doc/agent-config.schema.json is emitted. Every path is inside `root` (the agent's view of
// `/`), so the same file works as PID 1 (root "/") and in namespace mode (--root DIR).
import { join, resolve } from 'node:path';
import { LOG_FORMATS, readRegularFile, schema } from '../../common/index.ts';
import { LAYOUT_PATHS, mountPoint } from '../../platform/index.ts';
import { AgentError } from './agent-error.ts';

const { absolutePath, anyObject, configObject, defineFormat, flag, int, list, object, oneOf, text, v } =
  schema;
type Output<S extends schema.Schema> = schema.Output<S>;
type SchemaIssue = schema.SchemaIssue;

const about = <S extends schema.Schema>(s: S, description: string) => v.pipe(s, v.description(description));

const Logs = object({
  ringLines: about(v.optional(int(1, 1_000_000), 1000), 'Lines kept in memory per service'),
  fileBytes: about(
    v.optional(int(4096, 2 ** 40), 1 << 20),
    'A log file is rotated when it reaches this size',
  ),
  files: about(v.optional(int(1, 100), 3), 'Rotated files kept per service (name.log.1 … name.log.N)'),
  rateLinesPerSecond: about(
    v.optional(int(1, 10_000_000), 10_000),
    'Lines per second per service beyond which lines are dropped (and counted)',
  ),
});
export type LogConfig = Output<typeof Logs>;

/** A filesystem PID 1 mounts before reading anything else (the image's partitions). */
const Mount = object({
  source: about(
    text({
      pattern: /^(\/dev\/[A-Za-z0-9/_.-]+|PARTLABEL=[A-Za-z0-9_.-]{1,36})$/,
      hint: 'is not /dev/… or PARTLABEL=name',
    }),
    'A device path, or PARTLABEL=<GPT partition name>',
  ),
  target: about(absolutePath(), 'Mount point inside root'),
  type: text({ pattern: /^[a-z0-9]{1,16}$/, hint: 'is not a filesystem type such as ext4' }),
  options: about(
    v.optional(text({ pattern: /^[A-Za-z0-9=,_.-]{1,200}$/, hint: 'are not mount options' }), 'defaults'),
    'mount -o options; ro for the certificate and secure-config partitions',
  ),
  context: about(
    v.exactOptional(
      text({
        pattern: /^[a-z_]+:[a-z_]+:[a-z0-9_]+:s0$/,
        hint: 'is not an SELinux context at s0 (user:role:type:s0)',
      }),
    ),
    'SELinux: mount with this context= (one label for every file) when the kernel runs SELinux',
  ),
});
export type MountEntry = Output<typeof Mount>;

const Dbus = about(
  object({
    address: v.exactOptional(
      text({ hint: 'is not a D-Bus address such as unix:path=/run/dbus/system_bus_socket' }),
    ),
  }),
  'Serve the local API on D-Bus; without address, the system bus',
);

const Update = object({
  disk: about(
    v.exactOptional(absolutePath()),
    'The disk holding the CoreOS slots (default: the one whose GPT holds the running CoreOS)',
  ),
  rootHash: about(
    v.exactOptional(text({ pattern: /^[0-9a-f]{64}$/, hint: 'is not 64 lower-case hex digits' })),
    'The running CoreOS root hash (default: mway.roothash of /proc/cmdline)',
  ),
  stateFile: about(
    v.optional(absolutePath(), `${mountPoint('secure-dynamic-config')}/update.json`),
    'The rollback floor and the last update outcome (a writable partition both slots mount)',
  ),
  readyWithinMs: about(
    v.optional(int(1000, 3_600_000), 120_000),
    'Health gate: every service ready and no layer refused within this long after boot',
  ),
  graceMs: about(
    v.optional(int(0, 3_600_000), 45_000),
    'Health gate: then still healthy for this long (Container Linux waits 45 s) before the slot is marked good',
  ),
  requireBroker: about(
    v.optional(flag(), false),
    'Health gate: the peer link must also have reached the broker (or NATS) once during this boot',
  ),
});
export type UpdateConfig = Output<typeof Update>;

const Nocloud = object({
  device: about(
    v.optional(
      text({ max: 4096, pattern: /^(auto|\/[^\0]*)$/, hint: 'is not auto or an absolute path' }),
      'auto',
    ),
    'auto: the first block device whose FAT or ISO 9660 file system is labelled cidata (PID 1 only); or a device or image file inside root',
  ),
});
export type NocloudConfig = Output<typeof Nocloud>;

const Watchdog = object({
  device: about(
    v.optional(
      text({ max: 4096, pattern: /^(auto|none|\/[^\0]*)$/, hint: 'is not auto, none or an absolute path' }),
      'auto',
    ),
    'auto: /dev/watchdog when PID 1 finds one (QEMU -device i6300esb); none; or a device inside root. Opening it arms the timer',
  ),
  feedMs: about(
    v.optional(int(100, 600_000), 5000),
    "Milliseconds between feeds, from the agent's own event loop (well under the device's timeout, 30 s for i6300esb)",
  ),
});
export type WatchdogConfig = Output<typeof Watchdog>;

/**
 * The keys an image spec may set in CoreOS's agent.json (imagebuild's `agent`): one
 * definition shared by the agent config and the image spec.
 */
export const AGENT_TUNING = {
  stopTimeoutMs: about(
    v.optional(int(0, 600_000), 10_000),
    'Milliseconds a service gets after SIGTERM before SIGKILL (when its manifest gives none)',
  ),
  logs: v.optional(Logs, {}),
  logFormat: about(
    v.optional(oneOf(LOG_FORMATS), 'text'),
    "The agent's own log lines on the console: text, or json (one object a line, for a log shipper); --log-format and MWAY_LOG_FORMAT override",
  ),
  dbus: v.exactOptional(Dbus),
  control: about(v.exactOptional(anyObject), "The peer link's settings (doc/commands.md)"),
  nocloud: about(
    v.exactOptional(Nocloud),
    'Read a cloud-init NoCloud seed at boot (doc/agent-config.md, "cloud-init seed")',
  ),
  update: about(v.optional(Update, {}), 'A/B CoreOS updates and the health gate (doc/how-to-update.md)'),
  watchdog: about(
    v.optional(Watchdog, {}),
    'The hardware watchdog the agent feeds: a hung agent resets the machine (doc/how-to-update.md, "Hangs")',
  ),
};

const path = (fallback: string, description: string) =>
  about(v.optional(absolutePath(), fallback), description);

const fileSchema = configObject({
  root: path('/', "The agent's root directory; every path below is resolved inside it (--root overrides)"),
  stateDir: path('/run/milkyway', 'Runtime state: overlay mounts, sockets, install staging'),
  // The defaults are where the disk layout (platform/disk-layout.ts) mounts these partitions.
  trustAnchorsDir: path(
    LAYOUT_PATHS.trustAnchorsDir,
    'Certificate partition: *.crt trust anchors and optional *.crl',
  ),
  secureConfig: path(LAYOUT_PATHS.secureConfig, 'The signed secure config (an envelope of type config)'),
  layersDir: path(LAYOUT_PATHS.layersDir, 'Layer storage: <name>.mwl files'),
  dataDir: path(LAYOUT_PATHS.dataDir, 'Data partition: secure/<layer>, group/<group>, common/, logs/'),
  baseDir: path('/', "Read-only base every app's overlay sits on (the CoreOS root)"),
  allowUserspaceVerity: about(
    v.optional(flag(), false),
    'Activate layers with a userspace verity check when the kernel has no device-mapper',
  ),
  cgroupRoot: path('/sys/fs/cgroup/milkyway', 'cgroup v2 directory under which each service gets a cgroup'),
  selinuxPolicyDir: path(
    '/etc/selinux/milkyway',
    "CoreOS's compiled SELinux policy (policy.33, file_contexts, policy.json); used when the kernel runs SELinux",
  ),
  mounts: about(
    v.optional(list(Mount, 64), []),
    'Partitions to mount at boot, in order; unmounted in reverse at shutdown',
  ),
  ...AGENT_TUNING,
});

function configError(issue: SchemaIssue, file: string | undefined): AgentError {
  return new AgentError(
    'E_CONFIG_INVALID',
    `Cannot read agent config${file === undefined ? '' : ` ${file}`}: ${issue.keyPath}: ${issue.problem}`,
    { path: file ?? issue.keyPath, details: { key: issue.keyPath } },
  );
}

/** The agent's local config file (doc/agent-config.md, doc/agent-config.schema.json). */
export const agentConfigFormat = defineFormat({
  name: 'agent-config',
  title: 'MilkyWay agent config',
  schema: fileSchema,
  error: configError,
});

export type AgentConfig = Omit<Output<typeof fileSchema>, '$schema'>;

/** Maps a path inside the agent's root to the host path. */
export function inRoot(config: Pick<AgentConfig, 'root'>, path: string): string {
  return config.root === '/' ? path : join(config.root, path);
}

/**
 * Validates a parsed config. `root` overrides the file's `root` (the `--root` flag).
 * Unknown keys are errors, so a typo cannot silently fall back to a default.
 */
export function parseAgentConfig(raw: unknown, options: { root?: string; file?: string } = {}): AgentConfig {
  const { $schema: _, ...config } = agentConfigFormat.parse(raw, options.file);
  return { ...config, root: resolve(options.root ?? config.root) };
}

/** Largest agent config read (it is a few hundred bytes of JSON). */
const MAX_CONFIG_BYTES = 1 << 20;

/** Reads and validates the config file; E_CONFIG_READ / E_CONFIG_INVALID name the file and key. */
export async function readAgentConfig(path: string, options: { root?: string } = {}): Promise<AgentConfig> {
  // By type before any read: a FIFO in its place would hang the boot.
  const text = (
    await readRegularFile(path, {
      what: 'agent config',
      readCode: 'E_CONFIG_READ',
      maxBytes: MAX_CONFIG_BYTES,
      tooLargeCode: 'E_CONFIG_INVALID',
      error: (code, message, options) => new AgentError(code, message, options),
    })
  ).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AgentError(
      'E_CONFIG_INVALID',
      `Cannot read agent config ${path}: not JSON: ${(e as Error).message}`,
      {
        path,
        cause: e,
      },
    );
  }
  return parseAgentConfig(raw, { ...options, file: path });
}
