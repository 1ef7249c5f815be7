// A service placed on this host: the manifest's service with every field as the manifest
// has it (one vocabulary and one set of defaults: layers/service.ts), plus only what the
// agent decides — the qualified name, the uid/gid it runs as, its root and data binds and
// its SELinux label (placement.ts fills them in).
import type { ServiceSpec } from '../../layers/index.ts';

export interface Bind {
  src: string;
  dest: string;
  readOnly: boolean;
}

export interface UnitSpec extends Omit<ServiceSpec, 'timeoutStopSec'> {
  /** The manifest's, or the agent config's `stopTimeoutMs` when the manifest gives none. */
  timeoutStopSec: number;
  /** Unique across the agent: `<layer>/<service>`; after/requires/wants are qualified too. */
  name: string;
  layer: string;
  /** The numbers `user` and `group` resolved to. */
  uid: number;
  gid: number;
  /** Supplementary groups: the gids of the layer's data groups, so its services reach their dirs. */
  supplementaryGids?: readonly number[];
  /** Host path of the service's root filesystem (the layer's read-only overlay). */
  root: string;
  binds: Bind[];
  /** `writableRoot: persistent`: the host directory holding the overlay's kept `upper/` and `work/`. */
  persistentRoot?: string;
  /** SELinux: the service's process context (its layer's domain and pair); applied only when SELinux is enabled. */
  selinuxLabel?: string;
  /** SELinux: the context of the sandbox's own tmpfs mounts (bwrap --file-label). */
  selinuxFileLabel?: string;
  /** SELinux: the context= a writable root's overlay and its upper's tmpfs are mounted with. */
  selinuxRootLabel?: string;
}
