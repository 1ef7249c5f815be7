// The image spec: what `mway-image build` makes a disk from (doc/image-spec.md). Its one
// definition is the schema below (common/schema.ts); doc/image-spec.schema.json is emitted
// from it by `npm run schemas`. After the schema pass, relative paths resolve against the
// spec's folder and a few cross-field rules are checked; every error names the key path.
import { dirname, isAbsolute, resolve } from 'node:path';
import { readRegularFile, schema } from '../common/index.ts';
import { AGENT_TUNING, SECURE_CONFIG_ENTRIES } from '../agent/index.ts';
import { DEFAULT_PARTITION_SIZES } from '../platform/index.ts';
import { ImageError } from './image-error.ts';

const { configObject, defineFormat, flag, int, list, object, oneOf, shown, text, v } = schema;
type Output<S extends schema.Schema> = schema.Output<S>;
type SchemaIssue = schema.SchemaIssue;

const NAME = /^[a-z][a-z0-9-]{0,23}$/;
const VERSION = /^[0-9][0-9A-Za-z.+~-]{0,15}$/;
const DEB_NAME = /^[a-z0-9][a-z0-9.+-]+$/;
const IFACE = /^[a-z][a-z0-9]{0,14}$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const CMDLINE_WORD = /^[A-Za-z0-9_.,:=/+-]+$/;

/** Partition sizes in MiB; CoreOS A and B get `coreos` each (0 = as small as CoreOS A needs + 25 %). */
/** The `partitions` defaults (MiB): the rows' sizes in the disk layout table (platform/disk-layout.ts). */
export const DEFAULT_SIZES = DEFAULT_PARTITION_SIZES;

const mib = (min: number, size: number) => v.optional(int(min, 65536, 'a whole number of MiB'), size);
const hostPath = () => text();

const PartitionSizes = object({
  esp: mib(32, DEFAULT_SIZES.esp),
  boot: mib(16, DEFAULT_SIZES.boot),
  coreos: mib(0, DEFAULT_SIZES.coreos),
  certificates: mib(1, DEFAULT_SIZES.certificates),
  secureConfig: mib(1, DEFAULT_SIZES.secureConfig),
  secureDynamicConfig: mib(1, DEFAULT_SIZES.secureDynamicConfig),
  dynamicConfig: mib(1, DEFAULT_SIZES.dynamicConfig),
  layers: mib(1, DEFAULT_SIZES.layers),
  data: mib(1, DEFAULT_SIZES.data),
  peerIdentity: mib(1, DEFAULT_SIZES.peerIdentity),
});
export type PartitionSizes = Output<typeof PartitionSizes>;

const Network = object({
  interface: v.optional(text({ pattern: IFACE, hint: 'is not an interface name' }), 'eth0'),
  /** CIDR, e.g. 10.0.2.15/24 (QEMU user networking). */
  address: text({ pattern: CIDR, hint: 'is not an IPv4 address/prefix' }),
  gateway: v.exactOptional(text({ pattern: IPV4, hint: 'is not an IPv4 address' })),
});
export type CoreosNetwork = Output<typeof Network>;

const Coreos = object({
  binaries: v.pipe(
    v.optional(list(text({ pattern: /^\//, hint: 'expected an absolute host path' })), []),
    v.description('Extra programs (absolute host paths) put into CoreOS with their libraries'),
  ),
  files: v.pipe(
    v.optional(
      list(
        object({ src: hostPath(), dest: text({ pattern: /^\/[^\0]*$/, hint: 'must be an absolute path' }) }),
      ),
      [],
    ),
    v.description('Extra files: host `src` → CoreOS `dest`'),
  ),
  network: v.exactOptional(Network),
  kernelModules: v.pipe(
    v.optional(
      list(text({ pattern: /^[a-z0-9][a-z0-9_-]{0,63}$/, hint: 'is not a kernel module name' }), 64),
      [],
    ),
    v.description(
      'Kernel modules the initramfs loads at boot with their dependencies (from the kernel package), e.g. `wireguard` for the vpn module',
    ),
  ),
  cmdline: v.pipe(
    v.optional(
      list(text({ pattern: CMDLINE_WORD, hint: 'has characters a command line word may not' }), 256),
      [],
    ),
    v.description('Extra kernel command line parameters'),
  ),
});

const fileSchema = configObject({
  name: text({ pattern: NAME, hint: 'must be lower-case letters, digits and -, at most 24' }),
  version: text({ pattern: VERSION, hint: 'must start with a digit, at most 16 characters' }),
  architecture: v.optional(
    v.literal('x86_64', (i) => `${shown(i.input)} is not supported (x86_64)`),
    'x86_64',
  ),
  kernel: v.optional(
    object({
      package: v.exactOptional(text({ pattern: DEB_NAME, hint: 'is not a Debian package name' })),
      deb: v.exactOptional(hostPath()),
    }),
    { package: 'linux-image-amd64' },
  ),
  coreos: v.optional(Coreos, {}),
  selinux: v.pipe(
    v.optional(oneOf(['enforcing', 'permissive', 'off'] as const), 'enforcing'),
    v.description(
      'SELinux mode from the signed command line (doc/selinux.md): `enforcing`, `permissive` (denials logged, not enforced; for debugging) or `off`',
    ),
  ),
  layers: v.pipe(
    v.optional(list(hostPath()), []),
    v.description('`.mwl` files, or layer folders (layer.json + rootfs/) packed and signed at build time'),
  ),
  keys: v.pipe(
    v.optional(
      v.union(
        [
          v.literal('generate'),
          object({ dir: v.exactOptional(text()), generate: v.optional(flag(), false) }),
        ],
        'expected "generate" or an object',
      ),
      'generate',
    ),
    v.description(
      'Folder with vendor-root.crt, vendor.key/.crt, user-root.crt, user.key/.crt; `generate` makes a dev PKI there if missing',
    ),
  ),
  trust: v.optional(
    object({ anchors: v.optional(list(hostPath()), []), crls: v.optional(list(hostPath()), []) }),
    {},
  ),
  secureConfig: v.pipe(
    v.optional(object({ v: v.exactOptional(v.literal(1, 'expected 1')), ...SECURE_CONFIG_ENTRIES }), {
      v: 1,
    }),
    v.description("The secure config's payload (doc/agent-config.md), signed with the user key"),
  ),
  agent: v.pipe(
    v.optional(object(AGENT_TUNING), {}),
    v.description("Extra keys merged into CoreOS's /etc/milkyway/agent.json (doc/agent-config.md)"),
  ),
  partitions: v.optional(PartitionSizes, {}),
  bootchain: v.pipe(
    v.optional(
      object({
        secureBoot: v.optional(oneOf(['keys', 'snakeoil']), 'keys'),
        rollbackIndex: v.optional(int(0, 2 ** 31, 'a whole number'), 1),
        rollbackFloor: v.optional(int(0, 2 ** 31, 'a whole number'), 1),
      }),
      {},
    ),
    v.description(
      'The verified boot chain (doc/boot.md): whose Secure Boot keys sign stage 1 and the stage-2 kernel (`keys`: the keys folder’s secure-boot-db and secure-boot-kexec; `snakeoil`: Debian OVMF’s test key, for QEMU), the stage-2 rollback index and the floor stage 1 enforces',
    ),
  ),
  peerIdentity: v.pipe(
    v.exactOptional(hostPath()),
    v.description('Folder whose files go into the peer identity partition (peer key, certificate, KEM key)'),
  ),
});

function specError(issue: SchemaIssue, source: string | undefined): ImageError {
  return new ImageError(
    'E_SPEC_INVALID',
    `Cannot read image spec ${source ?? '<spec>'}: ${issue.keyPath}: ${issue.problem}`,
    { ...(source === undefined ? {} : { path: source }), details: { field: issue.keyPath } },
  );
}

export const imageSpecFormat = defineFormat({
  name: 'image-spec',
  title: 'MilkyWayLinux image spec',
  schema: fileSchema,
  error: specError,
});

type SpecFile = Output<typeof fileSchema>;

export interface ImageSpec extends Omit<SpecFile, '$schema' | 'kernel' | 'keys' | 'peerIdentity'> {
  /** The file it came from (undefined for a spec given as a value). */
  source: string | undefined;
  kernel: { package: string } | { deb: string };
  /** A generated PKI's `dir` stays relative (it lives beside the output); a given one is absolute. */
  keys: { dir: string; generate: boolean };
  peerIdentity: string | undefined;
}

/**
 * Checks `json` and returns the spec with defaults and absolute paths. `source` names the
 * file in errors; relative paths resolve against `base` (default: the source's folder).
 */
export function validateImageSpec(
  json: unknown,
  options: { source?: string; base?: string } = {},
): ImageSpec {
  const source = options.source;
  const base = options.base ?? (source !== undefined ? dirname(source) : process.cwd());
  const s = imageSpecFormat.parse(json, source ?? '<spec>');
  const fail = (keyPath: string, problem: string): never => {
    throw specError({ keyPath, problem }, source ?? '<spec>');
  };
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));

  const k = s.kernel;
  if ((k.package === undefined) === (k.deb === undefined))
    fail('kernel', 'give exactly one of package or deb');
  s.coreos.files.forEach((f, i) => {
    if (f.dest.split('/').includes('..')) fail(`coreos.files[${i}].dest`, 'must not contain ..');
  });
  s.coreos.cmdline.forEach((w, i) => {
    if (w.startsWith('mway.roothash=')) fail(`coreos.cmdline[${i}]`, 'mway.roothash is set by the builder');
    if (/^(security|lsm|enforcing|selinux)=/.test(w))
      fail(`coreos.cmdline[${i}]`, 'the LSM and its mode are set by the builder from `selinux`');
  });
  const keys =
    s.keys === 'generate'
      ? { dir: 'keys', generate: true }
      : s.keys.generate
        ? { dir: s.keys.dir ?? 'keys', generate: true }
        : {
            dir: abs(s.keys.dir ?? fail('keys.dir', 'missing (a folder of keys, or generate: true)')),
            generate: false,
          };

  const { $schema: _, ...rest } = s;
  return {
    ...rest,
    source,
    kernel: k.deb !== undefined ? { deb: abs(k.deb) } : { package: k.package as string },
    coreos: { ...s.coreos, files: s.coreos.files.map((f) => ({ src: abs(f.src), dest: f.dest })) },
    layers: s.layers.map(abs),
    keys,
    trust: { anchors: s.trust.anchors.map(abs), crls: s.trust.crls.map(abs) },
    // Passed on as written: the payload is signed and agent.json is written byte for byte.
    secureConfig: (json as { secureConfig?: SpecFile['secureConfig'] }).secureConfig ?? s.secureConfig,
    agent: (json as { agent?: SpecFile['agent'] }).agent ?? s.agent,
    peerIdentity: s.peerIdentity === undefined ? undefined : abs(s.peerIdentity),
  };
}

/** Largest image spec read (a spec is a few KiB of JSON; its files are named, not inlined). */
const SPEC_MAX_BYTES = 4 << 20;

/** Reads and validates a spec file (JSON). */
export async function loadImageSpec(path: string): Promise<ImageSpec> {
  const abs = resolve(path);
  // By type before any read (a FIFO would wait for a writer forever), and capped.
  const text = (
    await readRegularFile(abs, {
      what: 'image spec',
      readCode: 'E_SPEC_READ',
      maxBytes: SPEC_MAX_BYTES,
      error: (code, message, options) => new ImageError(code, message, options),
    })
  ).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ImageError(
      'E_SPEC_INVALID',
      `Cannot read image spec ${abs}: not JSON: ${(e as Error).message}`,
      {
        path: abs,
        cause: e,
      },
    );
  }
  return validateImageSpec(json, { source: abs });
}

/** examples/default/image.json in this repository. */
export const DEFAULT_SPEC = resolve(import.meta.dirname, '..', 'examples', 'default', 'image.json');
