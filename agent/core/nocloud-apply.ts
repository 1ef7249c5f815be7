// Provisioning from the cloud-init NoCloud seed at boot: read the volume (nocloud-volume.ts),
// parse it whole (nocloud-seed.ts), then apply what PID 1 owns — the hostname and static
// addresses and routes — and hand the broker and enrollment token to the peer link. Applied
// before the boot reads the secure config, so a hostname the signed secure config sets still
// wins; the peer link takes the broker and token only where the image's config names none.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { errorMessage, run } from '../../common/index.ts';
import type { LogFn } from './agent-log.ts';
import { type NocloudSeed, parseNocloudSeed, type SeedInterface } from './nocloud-seed.ts';
import { readSeedVolume } from './nocloud-volume.ts';

export interface SeedProvisioning {
  /** The seed's device (`auto`) or a device or image file, inside the agent's root. */
  device: string;
  /** PID 1 of a machine: the hostname and the network are ours to set. */
  pid1: boolean;
  log: LogFn;
  warn: (message: string) => void;
  sysBlock?: string;
  sysNet?: string;
  devDir?: string;
}

/** The kernel name of the interface with `mac` (sysfs `address`), if any. */
async function byMac(mac: string, sysNet: string): Promise<string | undefined> {
  for (const n of (await readdir(sysNet).catch(() => [] as string[])).sort()) {
    const a = await readFile(`${sysNet}/${n}/address`, 'utf8').catch(() => '');
    if (a.trim().toLowerCase() === mac) return n;
  }
  return undefined;
}

async function ip(args: string[], o: SeedProvisioning): Promise<void> {
  const r = await run('ip', args, { timeout: 10_000, reject: false });
  if (r.exitCode !== 0)
    o.warn(`cloud-init seed: ip ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
}

async function applyInterface(ifc: SeedInterface, o: SeedProvisioning): Promise<void> {
  const name =
    ifc.name ?? (ifc.mac === undefined ? undefined : await byMac(ifc.mac, o.sysNet ?? '/sys/class/net'));
  if (name === undefined) {
    o.warn(`cloud-init seed: no interface with MAC ${ifc.mac ?? '?'}: its addresses are not set`);
    return;
  }
  if (ifc.skipped.length > 0) o.warn(`cloud-init seed: ${name}: not done: ${ifc.skipped.join(', ')}`);
  await ip(['link', 'set', 'dev', name, 'up'], o);
  for (const a of ifc.addresses) await ip(['addr', 'add', a, 'dev', name], o);
  if (ifc.gateway4 !== undefined) await ip(['route', 'add', 'default', 'via', ifc.gateway4, 'dev', name], o);
  if (ifc.gateway6 !== undefined)
    await ip(['-6', 'route', 'add', 'default', 'via', ifc.gateway6, 'dev', name], o);
  o.log('info', `cloud-init seed: ${name} up with ${ifc.addresses.join(', ') || 'no address'}`);
}

/**
 * Reads, checks and applies the seed; resolves the seed (for the peer link), or undefined when
 * there is none or it was refused (logged with its code; nothing of it applied, the boot goes on).
 */
export async function provisionFromSeed(o: SeedProvisioning): Promise<NocloudSeed | undefined> {
  let seed: NocloudSeed;
  let source: string;
  try {
    const vol = await readSeedVolume(o.device, {
      ...(o.sysBlock === undefined ? {} : { sysBlock: o.sysBlock }),
      ...(o.devDir === undefined ? {} : { devDir: o.devDir }),
    });
    if (vol === undefined) {
      o.log('info', 'cloud-init seed: no volume labelled cidata');
      return undefined;
    }
    source = vol.source;
    seed = parseNocloudSeed(vol.files);
  } catch (e) {
    o.log(
      'error',
      `cloud-init seed refused: ${(e as { code?: string }).code ?? 'E_INTERNAL'}: ${errorMessage(e)}`,
    );
    return undefined;
  }
  o.log(
    'info',
    `cloud-init seed from ${source}: instance ${seed.instanceId ?? '-'}, hostname ${seed.hostname ?? '-'}, ${seed.interfaces.length} interface(s), broker ${seed.broker ?? '-'}, ${seed.token === undefined ? 'no' : 'an'} enrollment token`,
  );
  if (seed.ignored.length > 0)
    o.warn(`cloud-init seed: ignored (this OS runs only what is signed): ${seed.ignored.join(', ')}`);
  if (!o.pid1) {
    if (seed.hostname !== undefined || seed.interfaces.length > 0)
      o.log('info', 'cloud-init seed: hostname and network are left alone in namespace mode');
    return seed;
  }
  if (seed.hostname !== undefined) {
    await writeFile('/proc/sys/kernel/hostname', seed.hostname).catch((e: Error) =>
      o.warn(`cloud-init seed: cannot set the hostname: ${e.message}`),
    );
  }
  for (const ifc of seed.interfaces) await applyInterface(ifc, o);
  return seed;
}
