// The image spec: what `mway-image build` makes a disk from (doc/image-spec.md, JSON Schema
// in doc/image-spec.schema.json). Validation is by hand so each error names the key path
// (`partitions.data`, `layers[1]`) and the file; relative paths resolve against the spec's folder.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ImageError } from './image-error.ts';

/** Partition sizes in MiB; CoreOS A and B get `coreos` each (0 = as small as CoreOS A needs + 25 %). */
export interface PartitionSizes {
  esp: number;
  coreos: number;
  certificates: number;
  secureConfig: number;
  secureDynamicConfig: number;
  dynamicConfig: number;
  layers: number;
  data: number;
  peerIdentity: number;
}

export interface CoreosNetwork {
  interface: string;
  /** CIDR, e.g. 10.0.2.15/24 (QEMU user networking). */
  address: string;
  gateway?: string;
}

export interface ImageSpec {
  /** The file it came from (undefined for a spec given as a value). */
  source: string | undefined;
  name: string;
  version: string;
  architecture: 'x86_64';
  kernel: { package: string } | { deb: string };
  coreos: {
    /** Extra programs (absolute host paths) put into CoreOS with their libraries. */
    binaries: string[];
    /** Extra files: host `src` → CoreOS `dest`. */
    files: { src: string; dest: string }[];
    network: CoreosNetwork | undefined;
    /** Extra kernel command line parameters. */
    cmdline: string[];
  };
  /** `.mwl` files, or layer folders (layer.json + rootfs/) packed and signed with the user key at build time. */
  layers: string[];
  /** Folder with vendor-root.crt, vendor.key/.crt, user-root.crt, user.key/.crt; `generate` makes a dev PKI there if missing. */
  keys: { dir: string; generate: boolean };
  trust: { anchors: string[]; crls: string[] };
  /** The secure config's payload (doc/agent-config.md), signed with the user key. */
  secureConfig: Record<string, unknown>;
  /** Extra keys merged into CoreOS's /etc/milkyway/agent.json (e.g. `control`). */
  agent: Record<string, unknown>;
  partitions: PartitionSizes;
  /** Folder whose files go into the peer identity partition (peer key, certificate, KEM key). */
  peerIdentity: string | undefined;
}

export const DEFAULT_SIZES: PartitionSizes = {
  esp: 64,
  coreos: 0,
  certificates: 1,
  secureConfig: 1,
  secureDynamicConfig: 8,
  dynamicConfig: 8,
  layers: 128,
  data: 128,
  peerIdentity: 4,
};

const TOP_KEYS = [
  '$schema',
  'name',
  'version',
  'architecture',
  'kernel',
  'coreos',
  'layers',
  'keys',
  'trust',
  'secureConfig',
  'agent',
  'partitions',
  'peerIdentity',
];

type Obj = Record<string, unknown>;

class Checker {
  readonly source: string;
  readonly base: string;
  constructor(source: string, base: string) {
    this.source = source;
    this.base = base;
  }
  fail(path: string, message: string): never {
    throw new ImageError('E_SPEC_INVALID', `Invalid image spec ${this.source}: ${path}: ${message}`, {
      path: this.source,
      details: { field: path },
    });
  }
  object(v: unknown, path: string, keys: readonly string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'expected an object');
    for (const k of Object.keys(v)) {
      if (!keys.includes(k)) this.fail(path === '' ? k : `${path}.${k}`, 'unknown key');
    }
    return v as Obj;
  }
  string(v: unknown, path: string, pattern?: RegExp, hint?: string): string {
    if (typeof v !== 'string' || v === '') this.fail(path, 'expected a non-empty string');
    if (pattern !== undefined && !pattern.test(v)) this.fail(path, `${JSON.stringify(v)} ${hint ?? ''}`);
    return v;
  }
  strings(v: unknown, path: string): string[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) this.fail(path, 'expected an array of strings');
    return v.map((x, i) => this.string(x, `${path}[${i}]`));
  }
  path(v: unknown, path: string): string {
    const s = this.string(v, path);
    return isAbsolute(s) ? s : resolve(this.base, s);
  }
}

const NAME = /^[a-z][a-z0-9-]{0,23}$/;
const VERSION = /^[0-9][0-9A-Za-z.+~-]{0,15}$/;
const IFACE = /^[a-z][a-z0-9]{0,14}$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const CMDLINE_WORD = /^[A-Za-z0-9_.,:=/+-]+$/;

/**
 * Checks `json` and returns the spec with defaults and absolute paths. `source` names the
 * file in errors; relative paths resolve against `base` (default: the source's folder).
 */
export function validateImageSpec(
  json: unknown,
  options: { source?: string; base?: string } = {},
): ImageSpec {
  const source = options.source ?? '<spec>';
  const c: Checker = new Checker(
    source,
    options.base ?? (options.source ? dirname(options.source) : process.cwd()),
  );
  const o = c.object(json, '', TOP_KEYS);
  const name = c.string(o.name, 'name', NAME, 'must be lower-case letters, digits and -, at most 24');
  const version = c.string(o.version, 'version', VERSION, 'must start with a digit, at most 16 characters');
  const architecture = o.architecture ?? 'x86_64';
  if (architecture !== 'x86_64')
    c.fail('architecture', `${JSON.stringify(architecture)} is not supported (x86_64)`);

  let kernel: ImageSpec['kernel'] = { package: 'linux-image-amd64' };
  if (o.kernel !== undefined) {
    const k = c.object(o.kernel, 'kernel', ['package', 'deb']);
    if ((k.package === undefined) === (k.deb === undefined))
      c.fail('kernel', 'give exactly one of package or deb');
    kernel =
      k.package !== undefined
        ? {
            package: c.string(
              k.package,
              'kernel.package',
              /^[a-z0-9][a-z0-9.+-]+$/,
              'is not a Debian package name',
            ),
          }
        : { deb: c.path(k.deb, 'kernel.deb') };
  }

  const co = c.object(o.coreos ?? {}, 'coreos', ['binaries', 'files', 'network', 'cmdline']);
  const binaries = c.strings(co.binaries, 'coreos.binaries').map((b, i) => {
    if (!isAbsolute(b)) c.fail(`coreos.binaries[${i}]`, 'expected an absolute host path');
    return b;
  });
  if (co.files !== undefined && !Array.isArray(co.files)) c.fail('coreos.files', 'expected an array');
  const files = ((co.files as unknown[] | undefined) ?? []).map((f, i) => {
    const fo = c.object(f, `coreos.files[${i}]`, ['src', 'dest']);
    const dest = c.string(fo.dest, `coreos.files[${i}].dest`, /^\/[^\0]*$/, 'must be an absolute path');
    if (dest.split('/').includes('..')) c.fail(`coreos.files[${i}].dest`, 'must not contain ..');
    return { src: c.path(fo.src, `coreos.files[${i}].src`), dest };
  });
  let network: CoreosNetwork | undefined;
  if (co.network !== undefined) {
    const n = c.object(co.network, 'coreos.network', ['interface', 'address', 'gateway']);
    network = {
      interface: c.string(
        n.interface ?? 'eth0',
        'coreos.network.interface',
        IFACE,
        'is not an interface name',
      ),
      address: c.string(n.address, 'coreos.network.address', CIDR, 'is not an IPv4 address/prefix'),
      ...(n.gateway === undefined
        ? {}
        : { gateway: c.string(n.gateway, 'coreos.network.gateway', IPV4, 'is not an IPv4 address') }),
    };
  }
  const cmdline = c.strings(co.cmdline, 'coreos.cmdline').map((w, i) => {
    if (!CMDLINE_WORD.test(w))
      c.fail(`coreos.cmdline[${i}]`, `${JSON.stringify(w)} has characters a command line word may not`);
    if (w.startsWith('mway.roothash=')) c.fail(`coreos.cmdline[${i}]`, 'mway.roothash is set by the builder');
    return w;
  });

  const layers = c
    .strings(o.layers, 'layers')
    .map((_, i) => c.path((o.layers as unknown[])[i], `layers[${i}]`));

  let keys: ImageSpec['keys'];
  if (o.keys === 'generate' || o.keys === undefined) keys = { dir: 'keys', generate: true };
  else {
    const k = c.object(o.keys, 'keys', ['dir', 'generate']);
    const generate = k.generate ?? false;
    if (typeof generate !== 'boolean') c.fail('keys.generate', 'expected true or false');
    // A generated PKI lives beside the output unless the spec names an absolute folder.
    keys = { dir: generate ? c.string(k.dir ?? 'keys', 'keys.dir') : c.path(k.dir, 'keys.dir'), generate };
  }

  const tr = c.object(o.trust ?? {}, 'trust', ['anchors', 'crls']);
  const trust = {
    anchors: c
      .strings(tr.anchors, 'trust.anchors')
      .map((_, i) => c.path((tr.anchors as unknown[])[i], `trust.anchors[${i}]`)),
    crls: c
      .strings(tr.crls, 'trust.crls')
      .map((_, i) => c.path((tr.crls as unknown[])[i], `trust.crls[${i}]`)),
  };

  const secureConfig = c.object(o.secureConfig ?? { v: 1 }, 'secureConfig', [
    'v',
    'hostname',
    'groups',
    'allowLayers',
  ]);
  const agent = c.object(o.agent ?? {}, 'agent', ['control', 'dbus', 'logs', 'stopTimeoutMs']);

  const p = c.object(o.partitions ?? {}, 'partitions', Object.keys(DEFAULT_SIZES));
  const partitions = { ...DEFAULT_SIZES };
  for (const key of Object.keys(DEFAULT_SIZES) as (keyof PartitionSizes)[]) {
    const v = p[key];
    if (v === undefined) continue;
    const min = key === 'coreos' ? 0 : key === 'esp' ? 32 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65536)
      c.fail(`partitions.${key}`, `expected a whole number of MiB from ${min} to 65536`);
    partitions[key] = v;
  }
  const peerIdentity = o.peerIdentity === undefined ? undefined : c.path(o.peerIdentity, 'peerIdentity');

  return {
    source: options.source,
    name,
    version,
    architecture: 'x86_64',
    kernel,
    coreos: { binaries, files, network, cmdline },
    layers,
    keys,
    trust,
    secureConfig: secureConfig as Record<string, unknown>,
    agent: agent as Record<string, unknown>,
    partitions,
    peerIdentity,
  };
}

/** Reads and validates a spec file (JSON). */
export async function loadImageSpec(path: string): Promise<ImageSpec> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new ImageError('E_SPEC_READ', `Cannot read image spec ${abs}: ${(e as Error).message}`, {
      path: abs,
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ImageError('E_SPEC_INVALID', `Invalid image spec ${abs}: not JSON: ${(e as Error).message}`, {
      path: abs,
      cause: e,
    });
  }
  return validateImageSpec(json, { source: abs });
}

/** examples/default/image.json in this repository. */
export const DEFAULT_SPEC = resolve(import.meta.dirname, '..', 'examples', 'default', 'image.json');
