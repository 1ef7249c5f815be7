// The facts a peer reports about itself (Salt's grains, Talos's resources), as they travel in
// its signed status and in its enrollment request: defined once here, so the agent that
// gathers them (agent/remote/peer-facts.ts), the operator that targets by them
// (`fact:PATH<OP>VALUE`) and doc/peer-facts.schema.json agree. Objects are open (a newer peer
// may report more); maps are keyed by name, so every fact has a dotted path
// (`disks.vda.sizeBytes`).
import { schema } from '../../common/index.ts';
import { ControlError } from './control-error.ts';

const { v } = schema;
const opt = v.exactOptional;
const str = () => schema.text({ max: 256 });
const count = (what: string) => schema.int(0, Number.MAX_SAFE_INTEGER, what);

/** Most disks a peer reports (sorted by name): keeps the facts under an enrollment's 16 KiB. */
export const MAX_DISKS = 64;

/** Block device names as the kernel spells them under /sys/block (`vda`, `nvme0n1`, `sr0`). */
const diskName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9._:+-]{1,64}$/, 'expected a block device name (letters, digits, . _ : + -)'),
);

/** One block device (Talos `Disks`, Salt's `disks` grain): what /sys/block/NAME says. */
export const diskFactSchema = schema.openObject({
  /** `size` × 512: the kernel counts in 512-byte sectors whatever the logical block size. */
  sizeBytes: count('a size in bytes'),
  /** `device/model`, when the driver exposes one (SCSI, NVMe; not virtio). */
  model: opt(str()),
  /** `serial` (virtio, NVMe) or `device/serial`, when exposed. */
  serial: opt(str()),
  /** `queue/rotational` is 1: a spinning disk (or a device that does not say otherwise). */
  rotational: schema.flag(),
  /** `ro` is 1. */
  readOnly: schema.flag(),
});

export const peerFactsSchema = schema.openObject({
  hostname: schema.text({ max: 253 }),
  /** `uname -m` spelling: x86_64, aarch64. */
  arch: str(),
  /** The running kernel release (`uname -r`). */
  kernel: str(),
  /** /etc/os-release of the root the agent runs on: MilkyWayLinux's IMAGE_* on a CoreOS boot. */
  os: schema.openObject({ id: str(), version: opt(str()), image: opt(str()), pretty: opt(str()) }),
  /**
   * The CoreOS image version when the agent runs on MilkyWayLinux (os.id `milkyway`), and the
   * A/B slot this boot runs (doc/how-to-update.md): `fact:coreos.slot=b`.
   */
  coreos: opt(
    schema.openObject({ image: v.string(), version: str(), slot: opt(schema.oneOf(['a', 'b'] as const)) }),
  ),
  cpu: schema.openObject({ count: count('a CPU count'), model: str() }),
  memoryBytes: count('a size in bytes'),
  /** Non-loopback addresses by interface. */
  addresses: schema.record(v.string(), schema.list(str(), 64), 256),
  /** Block devices by name (loop, ram and dm- devices only when the peer itself mounts them). */
  disks: opt(schema.record(diskName, diskFactSchema, MAX_DISKS)),
  /** The SELinux mode the agent runs in (`enforcing`, `permissive`, `off`). */
  selinux: opt(str()),
});

export type DiskFact = schema.Output<typeof diskFactSchema>;
export type PeerFacts = schema.Output<typeof peerFactsSchema>;

/** doc/peer-facts.schema.json is emitted from it. */
export const peerFactsFormat = schema.defineFormat({
  name: 'peer-facts',
  title: "MilkyWay peer facts (a peer's own claims, in its signed status and enrollment request)",
  schema: peerFactsSchema,
  error: (issue, source) =>
    new ControlError(
      'E_RESULT_MALFORMED',
      `Facts${source === undefined ? '' : ` of ${source}`}: ${issue.keyPath}: ${issue.problem}`,
      { path: issue.keyPath },
    ),
});
