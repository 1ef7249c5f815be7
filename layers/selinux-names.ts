// SELinux names MilkyWayLinux derives, never chooses from input: a layer's five types and its
// CIL block, a group's data type, MCS levels of category pairs and the contexts built from them
// (doc/selinux.md, "Types"). One layer's names never equal another's, whatever the two are called.

/** Categories of the MCS frame (base.cil): c0 … c1023. */
export const MCS_CATEGORIES = 1024;

/**
 * A layer or group name as a CIL identifier part, injectively: `_` → `__`, `.` → `_d` (`.` is
 * CIL's namespace separator). `-` and the rest stay, so `web` is `web` and `my-app` `my-app`.
 * No escaped name contains `_` followed by anything but `_` or `d`, so `<stem>_t` and
 * `<stem>_file_t` of two names never meet.
 */
export function cilStem(name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name))
    throw new TypeError(`Cannot name SELinux types for ${JSON.stringify(name)}: not a layer or group name`);
  return name.replaceAll('_', '__').replaceAll('.', '_d');
}

export interface LayerTypes {
  /** The services' domain: `mway_<stem>_t`. */
  domain: string;
  /** Its payload's files (the context= of its mount). */
  files: string;
  /** Its private data (data/secure/<layer>). */
  data: string;
  /** Its secrets (data/secure/<layer>/secrets). */
  secret: string;
  /**
   * Its writable roots (writableRoot): a run's overlay over the read-only payload and the upper
   * it writes, both mounted with context= of this type, which only its domain and the agent write.
   */
  root: string;
  /** The CIL block its own module's declarations live in. */
  block: string;
}

export function layerTypes(layer: string): LayerTypes {
  const s = cilStem(layer);
  return {
    domain: `mway_${s}_t`,
    files: `mway_${s}_file_t`,
    data: `mway_${s}_data_t`,
    secret: `mway_${s}_secret_t`,
    root: `mway_${s}_root_t`,
    block: `mway_${s}`,
  };
}

/** A group's data type: `mwgroup_<stem>_t`. */
export function groupType(group: string): string {
  return `mwgroup_${cilStem(group)}_t`;
}

/** The MCS level of a category pair: `s0:c3,c17`. */
export function mcsLevel(pair: readonly [number, number]): string {
  const [a, b] = pair;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b >= MCS_CATEGORIES || a >= b)
    throw new RangeError(`Cannot make an MCS level of [${a}, ${b}]: expected 0 ≤ a < b < ${MCS_CATEGORIES}`);
  return `s0:c${a},c${b}`;
}

/** A layer's services' context: `system_u:system_r:mway_<stem>_t:s0:cA,cB` (s0 without a pair). */
export function layerProcessContext(layer: string, pair?: readonly [number, number]): string {
  return `system_u:system_r:${layerTypes(layer).domain}:${pair === undefined ? 's0' : mcsLevel(pair)}`;
}

/** An object context of one of the layer's types (files, data, secret, root) at its pair. */
export function layerObjectContext(
  layer: string,
  kind: 'files' | 'data' | 'secret' | 'root',
  pair?: readonly [number, number],
): string {
  const level = pair === undefined ? 's0' : mcsLevel(pair);
  return `system_u:object_r:${layerTypes(layer)[kind]}:${level}`;
}

/** An object context of a platform type at s0: `system_u:object_r:TYPE:s0`. */
export function platformContext(type: string): string {
  if (!/^[a-z][a-z0-9_]*_t$/.test(type)) throw new TypeError(`Not a platform type: ${JSON.stringify(type)}`);
  return `system_u:object_r:${type}:s0`;
}
