// Where a layer's services run on this host: a manifest service becomes the supervisor's
// UnitSpec by adding the agent's own decisions, never by renaming fields (the manifest's
// vocabulary is the supervisor's: layers/service.ts). Names become `<layer>/<service>`,
// and after/requires/wants entries are qualified the same way (`svc` of this layer,
// `layer/svc` of a dependency).
import type { ServiceSpec } from '../../layers/index.ts';
import type { Bind, UnitSpec } from './unit-spec.ts';

/** A layer's root, its data binds and its own dynamic uid and gid. */
export interface Placement {
  root: string;
  binds: Bind[];
  uid: number;
  gid: number;
  /** The service's persistent writable root (agent/layers/writable-root.ts), when it has one. */
  persistentRoot?: string | undefined;
  /**
   * With SELinux on: the services' process context, their sandbox's tmpfs context and the
   * context= of a writable root's overlay and upper (the layer's root type and pair).
   */
  selinux?: { process: string; files: string; root: string } | undefined;
  /** The agent config's stopTimeoutMs in seconds: for services whose manifest sets no timeoutStopSec. */
  defaultStopSec: number;
  /** The data groups the secure config grants the layer, with their gids (the group dirs are 2770 root:gid). */
  groupGids: Readonly<Record<string, number>>;
}

/**
 * A manifest service of `layer` as the supervisor runs it. `root` runs as uid (gid) 0; any
 * other user (group) is the layer's own dynamic one, so two layers never share a uid. Every
 * service of a layer gets the layer's SELinux contexts (applied only when SELinux is on).
 */
export function unitSpec(layer: string, service: ServiceSpec, where: Placement): UnitSpec {
  const qualified = (ref: string) => (ref.includes('/') ? ref : `${layer}/${ref}`);
  return {
    ...service,
    name: `${layer}/${service.name}`,
    layer,
    after: service.after.map(qualified),
    requires: service.requires.map(qualified),
    wants: service.wants.map(qualified),
    timeoutStopSec: service.timeoutStopSec ?? where.defaultStopSec,
    supplementaryGids: Object.values(where.groupGids).sort((a, b) => a - b),
    uid: service.user === 'root' ? 0 : where.uid,
    gid: service.group === 'root' ? 0 : where.gid,
    root: where.root,
    binds: where.binds,
    ...(where.persistentRoot === undefined ? {} : { persistentRoot: where.persistentRoot }),
    ...(where.selinux === undefined
      ? {}
      : {
          selinuxLabel: where.selinux.process,
          selinuxFileLabel: where.selinux.files,
          selinuxRootLabel: where.selinux.root,
        }),
  };
}
