// Where things live inside CoreOS, and the agent config the builder writes there
// (doc/agent-config.md). The partitions' mount points and the mounts themselves come from the
// disk layout table (platform/disk-layout.ts), so the agent mounts exactly what the disk has.
import { LAYOUT_PATHS, layoutMounts } from '../platform/index.ts';

export const COREOS_PATHS = {
  /** PID 1 after switch_root (the initramfs default `init=`). */
  init: '/sbin/init',
  node: '/usr/bin/node',
  /** The repository's runtime sources and production node_modules. */
  lib: '/usr/lib/milkyway',
  agentEntry: '/usr/lib/milkyway/agent/bin/milkyway-agent.ts',
  agentConfig: '/etc/milkyway/agent.json',
} as const;

/** The agent config CoreOS carries: the layout's paths and mounts (by PARTLABEL), then the spec's `agent` keys. */
export function coreosAgentConfig(options: {
  peerIdentity: boolean;
  extra: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    trustAnchorsDir: LAYOUT_PATHS.trustAnchorsDir,
    secureConfig: LAYOUT_PATHS.secureConfig,
    layersDir: LAYOUT_PATHS.layersDir,
    dataDir: LAYOUT_PATHS.dataDir,
    baseDir: '/',
    mounts: layoutMounts({ optional: options.peerIdentity ? ['peer-identity'] : [] }),
    ...options.extra,
  };
}
