// Facts (Salt's grains, Talos's resources): what a peer reports about itself in its signed
// status and in its enrollment request, so operators can see and target machines. They are
// the peer's own claims, signed by its key: good for inventory and targeting, never authority
// (a command's right to run still comes from the operator's signature and memberships).
import { readFile } from 'node:fs/promises';
import { arch, cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';

export interface PeerFacts {
  hostname: string;
  /** `uname -m` spelling: x86_64, aarch64. */
  arch: string;
  /** The running kernel release (`uname -r`). */
  kernel: string;
  /** /etc/os-release of the root the agent runs on: MilkyWayLinux's IMAGE_* on a CoreOS boot. */
  os: { id: string; version?: string; image?: string; pretty?: string };
  /** The CoreOS image version when the agent runs on MilkyWayLinux (os.id `milkyway`). */
  coreos?: { image: string; version: string };
  cpu: { count: number; model: string };
  memoryBytes: number;
  /** Non-loopback addresses by interface. */
  addresses: Record<string, string[]>;
}

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

/** Gathers the facts of this machine (cheap: node:os and one small file). */
export async function gatherFacts(osReleasePath = '/etc/os-release'): Promise<PeerFacts> {
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
  };
  if (id === 'milkyway' && rel.IMAGE_VERSION !== undefined)
    facts.coreos = { image: rel.IMAGE_ID ?? '', version: rel.IMAGE_VERSION };
  return facts;
}
