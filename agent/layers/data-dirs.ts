// The data partition's layout: `secure/<layer>` (0700, owned by the uid its services run as:
// privateDataOwner) for each layer, `group/<group>` (2770, root:<group gid>) shared by a group's layers, `common/`
// (1777, like /tmp), `logs/` (agent only). A layer is given only its own directories. With
// SELinux on, each carries its label (doc/selinux.md, "Data"): the partition's root, secure/
// and group/ milkyway_data_t, common/ milkyway_common_data_t, logs/ and the agent's files
// milkyway_agent_data_t, a layer's folder its data type at its category pair, a group's its type.
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bind } from '../services/unit-spec.ts';
import type { SecureConfig } from '../core/trust.ts';
import type { DataLabels } from './data-labels.ts';

/** Labelling on the data partition: the label record and the contexts of a layer's and a group's folder. */
export interface DataLabelling {
  labels: DataLabels;
  layerData: (layer: string) => string;
  groupData: (group: string) => string;
}

const ctx = (type: string) => `system_u:object_r:${type}:s0`;

/** Where a service sees its data directories. */
export const DATA_IN_SANDBOX = {
  secure: '/data/secure',
  group: '/data/group',
  common: '/data/common',
} as const;

async function ensure(path: string, mode: number, uid: number, gid: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  // mkdir's mode is masked by the umask and ignored when the directory exists: set both.
  await chown(path, uid, gid);
  await chmod(path, mode);
}

export async function prepareDataRoot(dataDir: string, labels?: DataLabels): Promise<void> {
  if (labels !== undefined) {
    const l = labels;
    const root = { uid: 0, gid: 0, recursive: false };
    await l.ensureExisting(dataDir, '.', ctx('milkyway_data_t'), { recursive: false });
    await l.ensure(dataDir, 'secure', ctx('milkyway_data_t'), { ...root, mode: 0o711 });
    await l.ensure(dataDir, 'group', ctx('milkyway_data_t'), { ...root, mode: 0o711 });
    await l.ensure(dataDir, 'common', ctx('milkyway_common_data_t'), {
      ...root,
      mode: 0o1777,
      recursive: true,
    });
    await l.ensure(dataDir, 'logs', ctx('milkyway_agent_data_t'), { ...root, mode: 0o700, recursive: true });
    for (const f of ['uids.json', 'selinux-labels.json'])
      await l.ensureExisting(dataDir, f, ctx('milkyway_agent_data_t'), { recursive: false });
    return;
  }
  await ensure(join(dataDir, 'secure'), 0o711, 0, 0);
  await ensure(join(dataDir, 'group'), 0o711, 0, 0);
  await ensure(join(dataDir, 'common'), 0o1777, 0, 0);
  await ensure(join(dataDir, 'logs'), 0o700, 0, 0);
}

/**
 * Who owns a layer's private data: the uid its services run as, as a volume's copy is chowned
 * (volumes.ts). A layer whose services all run as root gets 0:0, since root without
 * CAP_DAC_OVERRIDE (no service is given it) cannot enter a 0700 folder of another uid; any
 * other layer gets its own dynamic uid and gid. In a layer that mixes both, the data is the
 * layer uid's: its root services do not reach it (doc/selinux.md, "Data").
 */
export function privateDataOwner(
  services: readonly { user: string; group: string }[],
  layer: { uid: number; gid: number },
): { uid: number; gid: number } {
  const allRoot = services.length > 0 && services.every((s) => s.user === 'root');
  if (!allRoot) return { uid: layer.uid, gid: layer.gid };
  return { uid: 0, gid: services.every((s) => s.group === 'root') ? 0 : layer.gid };
}

export function groupsOf(layer: string, secure: SecureConfig): [string, number][] {
  return Object.entries(secure.groups)
    .filter(([, g]) => g.layers.includes(layer))
    .map(([name, g]) => [name, g.gid]);
}

/** The groups a layer asks for (manifest `data.groups`) that the secure config grants it. */
export function grantedGroups(layer: string, wanted: readonly string[], secure: SecureConfig): string[] {
  const member = new Set(groupsOf(layer, secure).map(([g]) => g));
  return wanted.filter((g) => member.has(g));
}

/**
 * Creates the layer's directories and returns the binds its services get: its own
 * `secure/<layer>` when the manifest asks for private data, `common/` when it asks for it,
 * and each asked-for group the secure config makes it a member of.
 */
export async function layerDataBinds(
  dataDir: string,
  layer: string,
  owner: { uid: number; gid: number },
  wants: { private: boolean; groups: readonly string[]; common: boolean },
  secure: SecureConfig,
  labelling?: DataLabelling,
): Promise<Bind[]> {
  const binds: Bind[] = [];
  if (wants.private) {
    const secureDir = join(dataDir, 'secure', layer);
    if (labelling === undefined) await ensure(secureDir, 0o700, owner.uid, owner.gid);
    else
      await labelling.labels.ensure(dataDir, join('secure', layer), labelling.layerData(layer), {
        mode: 0o700,
        uid: owner.uid,
        gid: owner.gid,
        recursive: true,
      });
    binds.push({ src: secureDir, dest: DATA_IN_SANDBOX.secure, readOnly: false });
  }
  if (wants.common)
    binds.push({ src: join(dataDir, 'common'), dest: DATA_IN_SANDBOX.common, readOnly: false });
  for (const name of grantedGroups(layer, wants.groups, secure)) {
    const gid = secure.groups[name]?.gid ?? 0;
    const dir = join(dataDir, 'group', name);
    if (labelling === undefined) await ensure(dir, 0o2770, 0, gid);
    else
      await labelling.labels.ensure(dataDir, join('group', name), labelling.groupData(name), {
        mode: 0o2770,
        uid: 0,
        gid,
        recursive: true,
      });
    binds.push({ src: dir, dest: `${DATA_IN_SANDBOX.group}/${name}`, readOnly: false });
  }
  return binds;
}
