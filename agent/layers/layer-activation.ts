// Makes a verified layer's payload readable, read-only, at a mount point: through kernel
// dm-verity when device-mapper is present (veritysetup on loop devices over the payload and
// hash areas inside the .mwl), otherwise only when the config allows it, after a full
// userspace verity check, as a plain read-only loop mount (no runtime integrity: warned).
import { existsSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { run } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

export interface PayloadArea {
  /** The .mwl file. */
  path: string;
  payloadOffset: number;
  payloadSize: number;
  verityOffset: number;
  veritySize: number;
  rootHash: string;
}

export interface Activation {
  mountPoint: string;
  /** The file mounted (a private copy in userspace mode). */
  source: string;
  verity: 'kernel' | 'userspace';
  loops: string[];
  dmName?: string;
}

/**
 * Payloads are read-only, and neither device nodes nor setuid/setgid bits in them mean anything
 * (pack refuses both; this holds for a layer made by any other tool too), so services do not
 * rely on bwrap's no_new_privs alone.
 */
export const PAYLOAD_MOUNT_OPTIONS = 'ro,nodev,nosuid';

export function kernelVerityAvailable(): boolean {
  return existsSync('/dev/mapper/control');
}

async function losetup(file: string, offset: number, size: number): Promise<string> {
  const r = await run(
    'losetup',
    ['--find', '--show', '--read-only', '--offset', String(offset), '--sizelimit', String(size), file],
    { timeout: 30_000 },
  );
  return r.stdout.trim();
}

async function detach(loop: string): Promise<void> {
  await run('losetup', ['--detach', loop], { timeout: 30_000, reject: false }).catch(() => {});
}

/** dm names allow [A-Za-z0-9_.-]; layer names are already within that. */
function dmNameOf(layer: string): string {
  return `mwl-${layer.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

export async function activatePayload(
  layer: string,
  area: PayloadArea,
  mountPoint: string,
  mode: 'kernel' | 'userspace',
  /** SELinux: mount with this context= (the layer's file type), so the payload's own xattrs never count. */
  context?: string,
): Promise<Activation> {
  const label = context === undefined ? '' : `,context="${context}"`;
  await mkdir(mountPoint, { recursive: true });
  const loops: string[] = [];
  try {
    if (mode === 'kernel') {
      const data = await losetup(area.path, area.payloadOffset, area.payloadSize);
      loops.push(data);
      const hash = await losetup(area.path, area.verityOffset, area.veritySize);
      loops.push(hash);
      const dmName = dmNameOf(layer);
      await run('veritysetup', ['open', data, dmName, hash, area.rootHash], { timeout: 60_000 });
      try {
        await run(
          'mount',
          ['-t', 'erofs', '-o', `${PAYLOAD_MOUNT_OPTIONS}${label}`, `/dev/mapper/${dmName}`, mountPoint],
          {
            timeout: 30_000,
          },
        );
      } catch (e) {
        await run('veritysetup', ['close', dmName], { timeout: 30_000, reject: false }).catch(() => {});
        throw e;
      }
      return { mountPoint, source: area.path, verity: 'kernel', loops, dmName };
    }
    // mount's own loop setup sets autoclear: the loop device goes away with the mount, even
    // when the namespace holding it dies with a SIGKILLed agent.
    await run(
      'mount',
      [
        '-t',
        'erofs',
        '-o',
        `${PAYLOAD_MOUNT_OPTIONS},loop,offset=${area.payloadOffset},sizelimit=${area.payloadSize}${label}`,
        area.path,
        mountPoint,
      ],
      { timeout: 30_000 },
    );
    return { mountPoint, source: area.path, verity: 'userspace', loops };
  } catch (e) {
    for (const l of loops) await detach(l);
    throw new AgentError('E_LAYER_ACTIVATE', `Cannot activate layer ${layer}: ${(e as Error).message}`, {
      cause: e,
      path: area.path,
    });
  }
}

export async function deactivatePayload(a: Activation): Promise<void> {
  await run('umount', [a.mountPoint], { timeout: 30_000, reject: false }).catch(() => {});
  if (a.dmName !== undefined) {
    await run('veritysetup', ['close', a.dmName], { timeout: 30_000, reject: false }).catch(() => {});
  }
  for (const l of a.loops) await detach(l);
  await rmdir(a.mountPoint).catch(() => {});
}
