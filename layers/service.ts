// A service as a layer manifest declares it and the agent's supervisor runs it: one
// vocabulary, with systemd's names and meanings where systemd has the setting
// (systemd.service(5): Type=, ExecStart=, Restart=, RestartSec=, RestartMaxDelaySec=,
// TimeoutStartSec=, TimeoutStopSec=; systemd.unit(5): After=, Requires=, Wants=,
// StartLimitBurst=, StartLimitIntervalSec=; systemd.exec(5): User=, Group=, Environment=,
// WorkingDirectory=, CapabilityBoundingSet=, PrivateNetwork=; systemd.kill(5): KillSignal=;
// systemd.resource-control(5): MemoryMax=, TasksMax=, CPUWeight=). Times are seconds, as
// JSON numbers (0.1 = 100 ms). The defaults here are the only ones: the agent runs what
// the validated manifest says (agent/services/unit-spec.ts adds only where it runs).
import { schema } from '../common/index.ts';
import { LayerError } from './layer-error.ts';

const { flag, int, list, oneOf, record, shown, variant, v } = schema;
type Output<S extends schema.Schema> = schema.Output<S>;

const about = <S extends schema.Schema>(s: S, description: string) => v.pipe(s, v.description(description));

/** A layer, service or group name: a-z 0-9 . _ -, starting with a letter or digit, at most 64. */
export const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** `svc` (this layer) or `layer/svc` (a dependency's). */
const SERVICE_REF = /^([a-z0-9][a-z0-9._-]{0,63}\/)?[a-z0-9][a-z0-9._-]{0,63}$/;
const CAP = /^CAP_[A-Z_]{2,32}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// The same device paths a module action may declare (layers/module-action.ts).
const DEVICE = /^\/dev\/[a-z0-9][a-z0-9_.-]{0,62}(\/[a-z0-9][a-z0-9_.-]{0,62}){0,2}$/;

/** Signals a service may be stopped with (KillSignal=; an OCI image's StopSignal maps here). */
export const SIGNALS = [
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
  'SIGHUP',
  'SIGKILL',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGPWR',
] as const;

/** Lists in a manifest hold at most this many entries. */
export const MAX_LIST = 256;

/** A string as a manifest holds it: at most 4096 characters, no NUL; empty is allowed. */
export function str(max = 4096) {
  return v.pipe(
    v.string((i) => `expected a string, got ${shown(i.input)}`),
    v.maxLength(max, (i) => `expected at most ${max} characters, got ${String(i.received)}`),
    v.regex(/^[^\0]*$/, 'must not contain NUL'),
  );
}

/** A string matching `pattern` (which must exclude NUL); the message says `"<value>" is not <what>`. */
export function named(pattern: RegExp, what: string, max = 1024) {
  return v.pipe(
    v.string((i) => `expected ${what}, got ${shown(i.input)}`),
    v.maxLength(max, (i) => `expected at most ${max} characters, got ${String(i.received)}`),
    v.regex(pattern, (i) => `${shown(i.input)} is not ${what}`),
  );
}

/** A command line: program and arguments, no shell. */
export function argv() {
  return v.pipe(list(str(), MAX_LIST), v.minLength(1, 'expected at least the program'));
}

/** Seconds from `min` to `max`, fractions allowed (the agent keeps ms); maxValue also refuses Infinity (1e999). */
function seconds(min: number, max: number) {
  const message = (i: { input: unknown }) => `expected seconds from ${min} to ${max}, got ${shown(i.input)}`;
  return v.pipe(v.number(message), v.minValue(min, message), v.maxValue(max, message));
}

const names = (description: string) =>
  about(v.optional(list(named(SERVICE_REF, '"service" or "layer/service"'), MAX_LIST), []), description);

/** Readiness beyond Type= (systemd has none): a TCP port that accepts, or a probe that exits 0. */
const Readiness = variant('type', [
  v.strictObject({
    type: v.literal('tcp'),
    port: int(1, 65535, 'a port'),
    host: about(
      v.optional(named(/^[0-9a-zA-Z.:-]{1,253}$/, 'a host name or address'), '127.0.0.1'),
      'Host to connect to; the service must share the host network',
    ),
  }),
  v.strictObject({
    type: v.literal('exec'),
    command: about(argv(), 'Probe run inside the sandbox with the service’s user; ready when it exits 0'),
    intervalSec: about(
      v.optional(seconds(0.01, 3600), 0.1),
      'Longest wait between probes (they start 5 ms apart and double up to this)',
    ),
  }),
]);

const entries = {
  name: named(NAME, 'a lowercase name (a-z 0-9 . _ -, at most 64)'),
  execStart: about(argv(), 'ExecStart=: the program and its arguments, run without a shell'),
  type: about(
    v.optional(oneOf(['simple', 'notify']), 'simple'),
    'Type=: simple is ready once its sandbox runs; notify once it sends READY=1 to $NOTIFY_SOCKET',
  ),
  readiness: about(v.exactOptional(Readiness), 'More that must hold before the service counts as ready'),
  environment: about(
    v.optional(record(named(ENV_NAME, 'an environment variable name'), str(), MAX_LIST), {}),
    'Environment=: variables set for the service (the environment is otherwise cleared)',
  ),
  workingDirectory: about(
    v.optional(named(/^\/[^\0]*$/, 'an absolute path', 4096), '/'),
    'WorkingDirectory=',
  ),
  user: about(
    v.optional(str(64), 'nobody'),
    'User=: root runs as uid 0; any other name runs as the layer’s own dynamic uid (DynamicUser=)',
  ),
  group: about(
    v.exactOptional(str(64)),
    'Group=: root is gid 0, any other the layer’s own gid; default: nogroup for user nobody, else the user’s name',
  ),
  restart: about(v.optional(oneOf(['no', 'on-failure', 'always']), 'on-failure'), 'Restart='),
  restartSec: about(
    v.optional(seconds(0, 3600), 0.1),
    'RestartSec=: the first restart delay, doubled on each restart',
  ),
  restartMaxDelaySec: about(
    v.optional(seconds(0, 3600), 30),
    'RestartMaxDelaySec=: the longest restart delay',
  ),
  startLimitBurst: about(v.optional(int(1, 1000), 5), 'StartLimitBurst=: starts allowed per interval'),
  startLimitIntervalSec: about(
    v.optional(seconds(0, 86_400), 10),
    'StartLimitIntervalSec=: more than startLimitBurst starts in this window and the service fails (0: no limit)',
  ),
  timeoutStartSec: about(
    v.optional(seconds(0.001, 3600), 90),
    'TimeoutStartSec=: not ready by then, it is killed and counts as failed',
  ),
  // No default here: the agent's `stopTimeoutMs` (systemd's DefaultTimeoutStopSec=) applies
  // to services whose manifest gives none, so it must stay visible that none was given.
  timeoutStopSec: about(
    v.optional(seconds(0.001, 3600)),
    "TimeoutStopSec=: SIGKILL this long after killSignal (absent: the agent config's stopTimeoutMs, 10 s by default)",
  ),
  killSignal: about(v.optional(oneOf(SIGNALS), 'SIGTERM'), 'KillSignal=: the first signal of a stop'),
  after: names('After=: started after these (when they start too) and stopped before them'),
  requires: names(
    'Requires=: started with this one; when one is ordered before (after) and fails, this one fails',
  ),
  wants: names('Wants=: started with this one; their failure does not matter'),
  capabilityBoundingSet: about(
    v.optional(list(named(CAP, 'a capability name like CAP_NET_BIND_SERVICE'), 64), []),
    'CapabilityBoundingSet=: the capabilities kept (as ambient ones for a non-root user); all others dropped',
  ),
  privateNetwork: about(v.optional(flag(), false), 'PrivateNetwork=: an own network namespace with only lo'),
  devices: about(
    v.optional(list(named(DEVICE, 'a device path under /dev'), 16), []),
    'DeviceAllow=: host device nodes bound in at the same path when the host has them (/dev/kvm, /dev/net/tun); a missing one is left out and the service starts without it',
  ),
  volumes: about(
    v.optional(
      list(
        named(
          /^(\/(?!\.\.?(\/|$))[^/\0]+)+$/,
          'an absolute path without . or .. components or a trailing /',
          1024,
        ),
        64,
      ),
      [],
    ),
    "Paths whose contents persist across starts and boots (an OCI image's Volumes): each is the layer's private data at secure/<layer>/volumes/<service>/<path>, seeded from the root's contents there on first use",
  ),
  groupVolumes: about(
    v.optional(
      list(
        v.strictObject({
          group: about(
            named(NAME, 'a group name'),
            'The data group (one of data.groups) the volume belongs to',
          ),
          volume: about(
            named(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'a volume name (a compose volume name)'),
            'The volume: group/<group>/volumes/<volume> on the data partition',
          ),
          path: about(
            named(
              /^(\/(?!\.\.?(\/|$))[^/\0]+)+$/,
              'an absolute path without . or .. components or a trailing /',
              1024,
            ),
            'Where the service sees it',
          ),
        }),
        16,
      ),
      [],
    ),
    "Volumes shared by a group's layers (a compose volume that several services mount): each is the group's data at group/<group>/volumes/<volume>, bound read-write at path, created empty",
  ),
  writableRoot: about(
    v.optional(oneOf(['no', 'ephemeral', 'persistent']), 'no'),
    "A writable layer over the read-only root, as a container has: ephemeral is fresh at each start and gone when the run ends; persistent is kept on the data partition (roots/<layer>/<service>, the agent's) across restarts and boots, and started afresh when the layer's payload changes (no: the root is read-only)",
  ),
  memoryMax: about(
    v.exactOptional(int(1 << 20, 2 ** 50, 'bytes')),
    'MemoryMax= in bytes (cgroup memory.max)',
  ),
  tasksMax: about(v.exactOptional(int(1, 4_194_304, 'a number of tasks')), 'TasksMax= (cgroup pids.max)'),
  cpuWeight: about(v.exactOptional(int(1, 10_000, 'a weight')), 'CPUWeight= (cgroup cpu.weight)'),
};

/** One service entry of a manifest (`services[i]`). */
export const ServiceSchema = schema.object(entries);

/** A service with every default filled, as the manifest holds it and the supervisor runs it. */
export type ServiceSpec = Omit<Output<typeof ServiceSchema>, 'group'> & { group: string };
export type Readiness = NonNullable<ServiceSpec['readiness']>;
export type RestartPolicy = ServiceSpec['restart'];
/** A writable root an importer may ask for (`no` is a packager's choice, not a container's). */
export type WritableRoot = Exclude<ServiceSpec['writableRoot'], 'no'>;

/** The group a service runs as when the manifest names none (Group= defaults to User='s). */
export function defaultGroup(user: string): string {
  return user === 'nobody' ? 'nogroup' : user;
}

/** Everything a service's after, requires and wants name (`svc` or `layer/svc`). */
export function serviceRefs(s: Pick<ServiceSpec, 'after' | 'requires' | 'wants'>): string[] {
  return [...new Set([...s.after, ...s.requires, ...s.wants])];
}

/**
 * The rules of one service the schema cannot state, after its pass: the restart delay cap is
 * not below the first delay, a TCP probe needs the host network. Fills the default group.
 * `fail(keyPath, problem)` throws the caller's error; `at` is the service's key path.
 */
export function completeService(
  s: Output<typeof ServiceSchema>,
  at: string,
  fail: (keyPath: string, problem: string) => never,
): ServiceSpec {
  if (s.restartMaxDelaySec < s.restartSec)
    fail(`${at}restartMaxDelaySec`, `must not be below restartSec (${s.restartSec})`);
  if (s.readiness?.type === 'tcp' && s.privateNetwork)
    fail(`${at}readiness`, 'a tcp probe connects from the host: it needs privateNetwork false');
  const paths = new Set(s.volumes);
  s.groupVolumes.forEach((g, i) => {
    if (paths.has(g.path))
      fail(
        `${at}groupVolumes[${i}].path`,
        `${g.path} is a volume already (volumes or another groupVolumes entry)`,
      );
    paths.add(g.path);
  });
  return { ...s, group: s.group ?? defaultGroup(s.user) };
}

/**
 * One service entry on its own, defaults filled (`services[i]` without the manifest's
 * cross-service rules): for tools and tests that build a service the way a manifest would.
 */
export function parseService(json: unknown): ServiceSpec {
  const fail = (keyPath: string, problem: string): never => {
    throw new LayerError('E_MANIFEST_INVALID', `Cannot read service: ${keyPath}: ${problem}`, {
      details: { field: keyPath },
    });
  };
  const r = schema.check(ServiceSchema, json);
  if (!r.ok) return fail(r.issue.keyPath, r.issue.problem);
  return completeService(r.value, '', fail);
}
