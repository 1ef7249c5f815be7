// The MilkyWayLinux disk layout (doc/disk-layout.md): partition roles, their GPT names and
// types, and where CoreOS's agent finds each one. One table, read by the builder, by
// `mway-image inspect`/`verify` and by the agent config the builder writes into CoreOS.
import { DPS } from '../formats/index.ts';
import { MILKYWAY } from './partition-types.ts';

export type PartitionRole =
  | 'esp'
  | 'coreos-a'
  | 'coreos-a-verity'
  | 'coreos-a-verity-sig'
  | 'coreos-b'
  | 'coreos-b-verity'
  | 'coreos-b-verity-sig'
  | 'certificates'
  | 'secure-config'
  | 'secure-dynamic-config'
  | 'dynamic-config'
  | 'layers'
  | 'data'
  | 'peer-identity';

/** GPT name of the empty CoreOS slot (systemd-sysupdate's convention for an unused slot). */
export const EMPTY_SLOT = '_empty';

/** GPT names of the fixed partitions (the agent mounts them by PARTLABEL). */
export const PARTLABEL = {
  esp: 'esp',
  certificates: 'certificates',
  secureConfig: 'secure-config',
  secureDynamicConfig: 'secure-dynamic-config',
  dynamicConfig: 'dynamic-config',
  layers: 'layers',
  data: 'data',
  peerIdentity: 'peer-identity',
} as const;

/** CoreOS slot labels: `name_version`, its hash tree `name_version.verity`, its signature `name_version.verity-sig`. */
export function coreosLabels(name: string, version: string): { data: string; verity: string; sig: string } {
  const base = `${name}_${version}`;
  return { data: base, verity: `${base}.verity`, sig: `${base}.verity-sig` };
}

/** Role of a partition from its type and name (for inspect and verify). */
export function roleOf(type: string, name: string): PartitionRole | undefined {
  const t = type.toLowerCase();
  const empty = name === EMPTY_SLOT;
  if (t === DPS.esp) return 'esp';
  if (t === DPS.root) return empty ? 'coreos-b' : 'coreos-a';
  if (t === DPS.rootVerity) return empty ? 'coreos-b-verity' : 'coreos-a-verity';
  if (t === MILKYWAY.coreosVeritySig) return empty ? 'coreos-b-verity-sig' : 'coreos-a-verity-sig';
  if (t === MILKYWAY.certificates) return 'certificates';
  if (t === MILKYWAY.secureConfig) return 'secure-config';
  if (t === MILKYWAY.secureDynamicConfig) return 'secure-dynamic-config';
  if (t === MILKYWAY.dynamicConfig) return 'dynamic-config';
  if (t === MILKYWAY.layers) return 'layers';
  if (t === MILKYWAY.data) return 'data';
  if (t === MILKYWAY.peerIdentity) return 'peer-identity';
  return undefined;
}

/** Where things live inside CoreOS. */
export const COREOS_PATHS = {
  /** PID 1 after switch_root (the initramfs default `init=`). */
  init: '/sbin/init',
  node: '/usr/bin/node',
  /** The repository's runtime sources and production node_modules. */
  lib: '/usr/lib/milkyway',
  agentEntry: '/usr/lib/milkyway/agent/bin/milkyway-agent.ts',
  agentConfig: '/etc/milkyway/agent.json',
  /** Mount points of the partitions (the root is read-only, so they exist in the image). */
  certs: '/certs',
  config: '/config',
  secureDynamicConfig: '/config-secure-dynamic',
  dynamicConfig: '/config-dynamic',
  layers: '/layers',
  data: '/data',
  identity: '/identity',
} as const;

/** The agent config CoreOS carries (doc/agent-config.md): mounts by PARTLABEL, then the usual paths. */
export function coreosAgentConfig(options: {
  peerIdentity: boolean;
  extra: Record<string, unknown>;
}): Record<string, unknown> {
  const m = (label: string, target: string, type: string, opts: string) => ({
    source: `PARTLABEL=${label}`,
    target,
    type,
    options: opts,
  });
  const mounts = [
    m(PARTLABEL.certificates, COREOS_PATHS.certs, 'erofs', 'ro,nodev,nosuid,noexec'),
    m(PARTLABEL.secureConfig, COREOS_PATHS.config, 'erofs', 'ro,nodev,nosuid,noexec'),
    m(PARTLABEL.secureDynamicConfig, COREOS_PATHS.secureDynamicConfig, 'ext4', 'rw,nodev,nosuid,noexec'),
    m(PARTLABEL.dynamicConfig, COREOS_PATHS.dynamicConfig, 'ext4', 'rw,nodev,nosuid,noexec'),
    m(PARTLABEL.layers, COREOS_PATHS.layers, 'ext4', 'rw,nodev,nosuid,noexec'),
    m(PARTLABEL.data, COREOS_PATHS.data, 'ext4', 'rw,nodev,nosuid'),
  ];
  if (options.peerIdentity)
    mounts.push(m(PARTLABEL.peerIdentity, COREOS_PATHS.identity, 'ext4', 'ro,nodev,nosuid,noexec'));
  return {
    trustAnchorsDir: COREOS_PATHS.certs,
    secureConfig: `${COREOS_PATHS.config}/secure.json`,
    layersDir: COREOS_PATHS.layers,
    dataDir: COREOS_PATHS.data,
    baseDir: '/',
    mounts,
    ...options.extra,
  };
}
