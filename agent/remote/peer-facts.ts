// Facts (Salt's grains, Talos's resources): what a peer reports about itself in its signed
// status and in its enrollment request, so operators can see and target machines. They are
// the peer's own claims, signed by its key: good for inventory and targeting, never authority
// (a command's right to run still comes from the operator's signature and memberships).
import { readFile } from 'node:fs/promises';
import { arch, cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import type { PeerFacts } from '../../control/wire/index.ts';
import { gatherDisks } from './peer-disks.ts';

export type { PeerFacts };

const UNAME: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7l' };

/** Parses os-release (freedesktop os-release(5)): KEY=value lines, values optionally quoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    let v = m[2] as string;
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1] as string] = v;
  }
  return out;
}

/**
 * Gathers the facts of this machine (cheap: node:os, os-release, and a few sysfs attributes
 * per disk). The shape is control/wire/peer-facts.ts.
 */
export async function gatherFacts(
  osReleasePath = '/etc/os-release',
  o: { sys?: string; mountinfo?: string } = {},
): Promise<PeerFacts> {
  let rel: Record<string, string> = {};
  try {
    rel = parseOsRelease(await readFile(osReleasePath, 'utf8'));
  } catch {
    // No os-release (a bare test root): the facts say `unknown` rather than guess.
  }
  const addresses: Record<string, string[]> = {};
  for (const [name, list] of Object.entries(networkInterfaces())) {
    const a = (list ?? []).filter((x) => !x.internal).map((x) => x.address);
    if (a.length > 0) addresses[name] = a;
  }
  const c = cpus();
  const id = rel.ID ?? 'unknown';
  const facts: PeerFacts = {
    hostname: hostname(),
    arch: UNAME[arch()] ?? arch(),
    kernel: release(),
    os: {
      id,
      ...(rel.VERSION_ID === undefined ? {} : { version: rel.VERSION_ID }),
      ...(rel.IMAGE_ID === undefined ? {} : { image: rel.IMAGE_ID }),
      ...(rel.PRETTY_NAME === undefined ? {} : { pretty: rel.PRETTY_NAME }),
    },
    cpu: { count: c.length, model: c[0]?.model.trim() ?? 'unknown' },
    memoryBytes: totalmem(),
    addresses,
    disks: await gatherDisks(o.sys, o.mountinfo),
  };
  if (id === 'milkyway' && rel.IMAGE_VERSION !== undefined)
    facts.coreos = { image: rel.IMAGE_ID ?? '', version: rel.IMAGE_VERSION };
  return facts;
}
