// The bubblewrap command line for one service: own PID, IPC and UTS namespaces, network
// as the manifest says, the layer's read-only overlay as `/`, only the service's own data
// directories bound in, capabilities cut to the manifest's list, its uid/gid, and its
// SELinux exec label when SELinux is on. bwrap is PID 1 inside and reaps orphans there.
// The uid switch is done by util-linux `setpriv` inside the sandbox, because bwrap only
// changes uid inside a user namespace, where the manifest's capabilities would not count
// against the host's network or files.
import type { UnitSpec } from './unit-spec.ts';

/** Where the notify socket's directory is bound inside the sandbox. */
export const NOTIFY_DIR_IN_SANDBOX = '/run/milkyway-notify';
export const NOTIFY_SOCKET_IN_SANDBOX = `${NOTIFY_DIR_IN_SANDBOX}/notify.sock`;
/** The system bus's socket directory, in the agent's root and in a sandbox. */
export const SYSTEM_BUS_DIR = '/run/dbus';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Needed by setpriv to switch user and set the bounding set; setpriv then drops them.
const SWITCH_CAPS = ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP'];

// SELinux: a service's labels come with its spec (agent/services/placement.ts), set only
// when the agent runs SELinux; `selinux` below says the kernel runs it (doc/selinux.md).
export { SELINUXFS, selinuxEnabled } from '../core/selinux-state.ts';

/** `CAP_NET_BIND_SERVICE` → `net_bind_service` (setpriv's spelling). */
function setprivCap(cap: string): string {
  return cap.toLowerCase().replace(/^cap_/, '');
}

export function normalizeCap(cap: string): string {
  const up = cap.toUpperCase();
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}

export interface SandboxOptions {
  /** Host directory holding the notify socket, when readiness is `notify`. */
  notifyDir?: string;
  /** fd on which bwrap writes `{"child-pid": N}`. */
  infoFd?: number;
  selinux?: boolean;
  /** The service's root as the run mounted it (a writable overlay over `spec.root`), bound read-write. */
  writableRoot?: string;
  /** Host device nodes bound in at the same path (a module action's declared `devices`). */
  devices?: readonly string[];
  /** The system bus's directory, bound read-only at /run/dbus: the agent's local API. */
  systemBusDir?: string;
}

/** What the sandbox is built from: a service's UnitSpec, or a module action's (agent/modules/). */
export type SandboxSpec = Pick<
  UnitSpec,
  | 'capabilityBoundingSet'
  | 'privateNetwork'
  | 'layer'
  | 'root'
  | 'binds'
  | 'workingDirectory'
  | 'environment'
  | 'selinuxLabel'
  | 'selinuxFileLabel'
  | 'uid'
  | 'gid'
  | 'supplementaryGids'
  | 'execStart'
>;

/** The argv after `bwrap` that runs `spec.execStart` sandboxed, ending with setpriv and the command. */
export function bwrapArgs(spec: SandboxSpec, options: SandboxOptions = {}): string[] {
  const caps = [...new Set(spec.capabilityBoundingSet.map(normalizeCap))].sort();
  const a: string[] = [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--die-with-parent',
    '--new-session',
  ];
  if (spec.privateNetwork) a.push('--unshare-net');
  a.push('--hostname', spec.layer.slice(0, 63));
  if (options.writableRoot === undefined) a.push('--ro-bind', spec.root, '/');
  else a.push('--bind', options.writableRoot, '/');
  // /tmp is sticky and world-writable (1777) as on every Linux and in every image, so a service
  // that runs as, or drops to, a non-root user can make its temporary files; bwrap's tmpfs is
  // otherwise 0755 root. /run stays 0755 root, as the FHS has it.
  a.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp', '--tmpfs', '/run');
  for (const d of options.devices ?? []) a.push('--dev-bind', d, d);
  for (const b of spec.binds) a.push(b.readOnly ? '--ro-bind' : '--bind', b.src, b.dest);
  if (options.notifyDir !== undefined) a.push('--bind', options.notifyDir, NOTIFY_DIR_IN_SANDBOX);
  // The directory, not the socket: the bus starts after the boot's services, and a restarted
  // bus makes a new socket there. A read-only bind still lets a client connect (only the
  // socket's own permissions and the policy count for connect(2)).
  if (options.systemBusDir !== undefined) a.push('--ro-bind', options.systemBusDir, SYSTEM_BUS_DIR);
  a.push('--chdir', spec.workingDirectory, '--clearenv');
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/', ...spec.environment };
  if (options.notifyDir !== undefined) env.NOTIFY_SOCKET = NOTIFY_SOCKET_IN_SANDBOX;
  for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v);
  a.push('--cap-drop', 'ALL');
  for (const cap of [...new Set([...caps, ...SWITCH_CAPS])]) a.push('--cap-add', cap);
  if (options.selinux === true && spec.selinuxLabel !== undefined) {
    // bwrap writes the exec label just before its last exec (setpriv's): the service's
    // domain and category pair; its own tmpfs mounts (/tmp, /run, /dev) get the file label.
    a.push('--exec-label', spec.selinuxLabel);
    if (spec.selinuxFileLabel !== undefined) a.push('--file-label', spec.selinuxFileLabel);
  }
  if (options.infoFd !== undefined) a.push('--info-fd', String(options.infoFd));
  a.push(
    '--',
    ...setprivArgs(spec.uid, spec.gid, caps, undefined, spec.supplementaryGids),
    ...spec.execStart,
  );
  return a;
}

/**
 * `setpriv … --` that switches to uid/gid and keeps exactly `caps` (as ambient caps for
 * non-root); with `selinuxLabel`, the command it execs enters that context. The supplementary
 * groups are exactly `groups` (the layer's data groups), never the agent's.
 */
export function setprivArgs(
  uid: number,
  gid: number,
  caps: readonly string[],
  selinuxLabel?: string,
  groups: readonly number[] = [],
): string[] {
  const list = caps.length === 0 ? '-all' : `-all,${caps.map((c) => `+${setprivCap(c)}`).join(',')}`;
  return [
    'setpriv',
    `--reuid=${uid}`,
    `--regid=${gid}`,
    groups.length === 0 ? '--clear-groups' : `--groups=${groups.join(',')}`,
    `--bounding-set=${list}`,
    `--inh-caps=${list}`,
    `--ambient-caps=${list}`,
    '--no-new-privs',
    ...(selinuxLabel === undefined ? [] : ['--selinux-label', selinuxLabel]),
    '--',
  ];
}
