// The cloud-init NoCloud seed as the agent reads it (cloud-init docs, "Datasource NoCloud":
// `meta-data`, `user-data`, optional `network-config` in the root of a volume labelled cidata).
// The seed is unsigned and comes from whoever made the VM, so it only fills gaps the image
// leaves open — hostname, network, the broker to enroll through, an enrollment token — and is
// never authority for anything (doc/threat-model.md, "cloud-init seed"). Everything else a
// cloud-config can say (runcmd, users, write_files, packages …) is ignored and listed: this OS
// runs only what is signed. A seed that does not parse is refused whole (E_SEED_INVALID).
import { isIP } from 'node:net';
import { parseDocument } from 'yaml';
import { schema } from '../../common/index.ts';
import { AgentError } from './agent-error.ts';

const { check, list, object, openObject, text, v } = schema;

/** Largest file of each kind read from the seed (cloud-init has no limit; ours keeps PID 1 small). */
export const SEED_MAX_BYTES = { 'meta-data': 64 << 10, 'user-data': 256 << 10, 'network-config': 64 << 10 };
export type SeedFile = keyof typeof SEED_MAX_BYTES;
export const SEED_FILES = Object.keys(SEED_MAX_BYTES) as SeedFile[];

/** An enrollment token's JSON, at most this long (control/wire's MAX_TOKEN_BYTES). */
const MAX_TOKEN_JSON = 32_768;

/** One interface's static configuration. */
export interface SeedInterface {
  /** Kernel name (eth0), or found by `mac`. */
  name?: string;
  mac?: string;
  /** CIDR addresses, IPv4 or IPv6. */
  addresses: string[];
  gateway4?: string;
  gateway6?: string;
  /** What the seed asked for that the agent does not do (dhcp, nameservers), for one warning. */
  skipped: string[];
}

export interface NocloudSeed {
  instanceId?: string;
  /** Short host name (the first label), from user-data `hostname` / `fqdn`, else meta-data `local-hostname`. */
  hostname?: string;
  interfaces: SeedInterface[];
  /** `milkyway.broker` of the user-data: host:port. */
  broker?: string;
  /** `milkyway.token`: an enrollment token envelope (checked by `mway peers autosign`, not here). */
  token?: Record<string, unknown>;
  /** Keys and files read but not acted on, for one warning. */
  ignored: string[];
}

function invalid(file: string, key: string, problem: string): AgentError {
  return new AgentError('E_SEED_INVALID', `Cannot use the cloud-init seed's ${file}: ${key}: ${problem}`, {
    path: file,
    details: { file, key },
  });
}

/** One YAML document, core schema, bounded aliases; any YAML error is E_SEED_INVALID. */
function yaml(file: string, bytes: Uint8Array): unknown {
  const textIn = Buffer.from(bytes).toString('utf8');
  const doc = parseDocument(textIn, { schema: 'core', uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err !== undefined) throw invalid(file, '(top level)', `not YAML: ${err.message.split('\n')[0]}`);
  try {
    // maxAliasCount bounds "billion laughs" expansion.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalid(file, '(top level)', `not YAML: ${(e as Error).message}`);
  }
}

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const hostName = text({
  max: 253,
  pattern: /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/,
  hint: 'is not a host name (RFC 1123 labels)',
});

const cidr = v.pipe(
  text({ max: 64, hint: 'is not an address with a prefix length' }),
  v.check(
    (s) => {
      const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
      if (m === null) return false;
      const fam = isIP(m[1] as string);
      return fam !== 0 && Number(m[2]) <= (fam === 4 ? 32 : 128);
    },
    (i) => `${JSON.stringify(i.input)} is not an address with a prefix length (10.0.2.15/24)`,
  ),
);
const ip = (fam: 4 | 6) =>
  v.pipe(
    text({ max: 64 }),
    v.check(
      (s) => isIP(s) === fam,
      (i) => `${JSON.stringify(i.input)} is not an IPv${fam} address`,
    ),
  );
const ifName = text({ max: 15, pattern: /^[A-Za-z0-9_.-]{1,15}$/, hint: 'is not an interface name' });
const mac = text({ max: 17, pattern: /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, hint: 'is not a MAC address' });

const MetaData = openObject({
  'instance-id': v.exactOptional(text({ max: 256 })),
  'local-hostname': v.exactOptional(hostName),
});

const MilkyWay = object({
  broker: v.exactOptional(
    v.pipe(
      text({ max: 261, pattern: /^[A-Za-z0-9.:[\]-]+:\d{1,5}$/, hint: 'is not host:port (10.0.2.2:7443)' }),
      v.check(
        (s) => {
          const port = Number(s.slice(s.lastIndexOf(':') + 1));
          return port >= 1 && port <= 65535;
        },
        (i) => `${JSON.stringify(i.input)} has a port outside 1..65535`,
      ),
    ),
  ),
  token: v.exactOptional(v.union([text({ max: MAX_TOKEN_JSON }), schema.anyObject])),
});

const UserData = openObject({
  hostname: v.exactOptional(hostName),
  fqdn: v.exactOptional(hostName),
  milkyway: v.exactOptional(MilkyWay),
});

/** network-config version 2 (netplan-like): `ethernets` by id. */
const V2Ethernet = openObject({
  match: v.exactOptional(openObject({ macaddress: v.exactOptional(mac), name: v.exactOptional(ifName) })),
  'set-name': v.exactOptional(ifName),
  addresses: v.optional(list(cidr, 64), []),
  gateway4: v.exactOptional(ip(4)),
  gateway6: v.exactOptional(ip(6)),
  dhcp4: v.exactOptional(v.boolean()),
  dhcp6: v.exactOptional(v.boolean()),
  nameservers: v.exactOptional(v.unknown()),
});
const V2 = openObject({
  version: v.literal(2),
  ethernets: v.optional(schema.record(ifName, V2Ethernet, 64), {}),
});

/** network-config version 1: a list of `physical` entries with subnets. */
const V1Subnet = openObject({
  type: text({ max: 32 }),
  address: v.exactOptional(text({ max: 64 })),
  netmask: v.exactOptional(ip(4)),
  gateway: v.exactOptional(text({ max: 64 })),
});
const V1Entry = openObject({
  type: text({ max: 32 }),
  name: v.exactOptional(ifName),
  mac_address: v.exactOptional(mac),
  subnets: v.optional(list(V1Subnet, 64), []),
});
const V1 = openObject({ version: v.literal(1), config: v.optional(list(V1Entry, 64), []) });

function checked<S extends schema.Schema>(s: S, file: string, value: unknown): schema.Output<S> {
  const r = check(s, value);
  if (!r.ok) throw invalid(file, r.issue.keyPath, r.issue.problem);
  return r.value;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A dotted netmask's prefix length (255.255.255.0 → 24), or undefined when it is not contiguous. */
function prefixOf(mask: string): number | undefined {
  const bits = mask
    .split('.')
    .map((o) => Number(o).toString(2).padStart(8, '0'))
    .join('');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') < 0 ? 32 : bits.indexOf('0')) : undefined;
}

function v1Interfaces(cfg: schema.Output<typeof V1>, ignored: string[]): SeedInterface[] {
  const out: SeedInterface[] = [];
  const file = 'network-config';
  cfg.config.forEach((e, i) => {
    if (e.type !== 'physical') {
      ignored.push(`network-config config[${i}] (type ${e.type})`);
      return;
    }
    const ifc: SeedInterface = {
      ...(e.name === undefined ? {} : { name: e.name }),
      ...(e.mac_address === undefined ? {} : { mac: e.mac_address.toLowerCase() }),
      addresses: [],
      skipped: [],
    };
    e.subnets.forEach((s, j) => {
      const key = `config[${i}].subnets[${j}]`;
      if (s.type !== 'static' && s.type !== 'static6') {
        ifc.skipped.push(`${s.type} (no DHCP client on MilkyWayLinux)`);
        return;
      }
      if (s.address === undefined) throw invalid(file, `${key}.address`, 'missing');
      let address = s.address;
      if (!address.includes('/')) {
        const fam = isIP(address);
        const p = s.netmask === undefined ? (fam === 6 ? 64 : 32) : prefixOf(s.netmask);
        if (p === undefined)
          throw invalid(file, `${key}.netmask`, `${s.netmask} is not a contiguous netmask`);
        address = `${address}/${p}`;
      }
      ifc.addresses.push(checked(cidr, file, address));
      if (s.gateway !== undefined) {
        const fam = isIP(s.gateway);
        if (fam === 0)
          throw invalid(file, `${key}.gateway`, `${JSON.stringify(s.gateway)} is not an address`);
        if (fam === 4) ifc.gateway4 = s.gateway;
        else ifc.gateway6 = s.gateway;
      }
    });
    if (ifc.name === undefined && ifc.mac === undefined)
      throw invalid(file, `config[${i}]`, 'needs name or mac_address');
    out.push(ifc);
  });
  return out;
}

function v2Interfaces(cfg: schema.Output<typeof V2>): SeedInterface[] {
  return Object.entries(cfg.ethernets).map(([id, e]) => {
    const skipped: string[] = [];
    if (e.dhcp4 === true) skipped.push('dhcp4 (no DHCP client on MilkyWayLinux)');
    if (e.dhcp6 === true) skipped.push('dhcp6 (no DHCP client on MilkyWayLinux)');
    if (e.nameservers !== undefined) skipped.push('nameservers (/etc is read-only CoreOS)');
    const name = e.match?.name ?? (e.match?.macaddress === undefined ? id : undefined);
    return {
      ...(name === undefined ? {} : { name }),
      ...(e.match?.macaddress === undefined ? {} : { mac: e.match.macaddress.toLowerCase() }),
      addresses: e.addresses,
      ...(e.gateway4 === undefined ? {} : { gateway4: e.gateway4 }),
      ...(e.gateway6 === undefined ? {} : { gateway6: e.gateway6 }),
      skipped,
    };
  });
}

/** The part of a host name this machine is called (cloud-init's short hostname). */
function shortName(h: string): string {
  const first = h.replace(/\.$/, '').split('.')[0] as string;
  if (!LABEL.test(first))
    throw invalid('user-data', 'hostname', `${JSON.stringify(h)} has no usable first label`);
  return first;
}

/**
 * The seed from its files' bytes (a missing file is absent from `files`). meta-data is required,
 * as cloud-init requires it; user-data must be `#cloud-config` (a script or MIME archive is
 * refused, never run).
 */
export function parseNocloudSeed(files: ReadonlyMap<string, Uint8Array>): NocloudSeed {
  for (const f of SEED_FILES) {
    const b = files.get(f);
    if (b !== undefined && b.length > SEED_MAX_BYTES[f])
      throw invalid(f, '(top level)', `${b.length} bytes, above ${SEED_MAX_BYTES[f]}`);
  }
  const metaBytes = files.get('meta-data');
  if (metaBytes === undefined)
    throw invalid('meta-data', '(file)', 'missing (NoCloud needs meta-data, even empty)');
  const metaRaw = yaml('meta-data', metaBytes) ?? {};
  const meta = checked(MetaData, 'meta-data', metaRaw);
  const ignored: string[] = [];
  if ('network-interfaces' in meta) ignored.push('meta-data network-interfaces (use network-config)');

  let user: schema.Output<typeof UserData> = {};
  const userBytes = files.get('user-data');
  if (userBytes !== undefined && userBytes.length > 0) {
    const first = Buffer.from(userBytes.subarray(0, 64)).toString('utf8').split('\n')[0]?.trim() ?? '';
    if (first !== '#cloud-config')
      throw invalid(
        'user-data',
        '(first line)',
        `${JSON.stringify(first.slice(0, 40))} is not #cloud-config (scripts and MIME archives are never run: this OS runs only what is signed)`,
      );
    const raw = yaml('user-data', userBytes) ?? {};
    user = checked(UserData, 'user-data', raw);
    for (const k of Object.keys(user))
      if (!['hostname', 'fqdn', 'milkyway'].includes(k)) ignored.push(`user-data ${k}`);
  }

  let interfaces: SeedInterface[] = [];
  const netBytes = files.get('network-config');
  if (netBytes !== undefined) {
    const raw = yaml('network-config', netBytes);
    // Both spellings cloud-init reads: the config itself, or under a top-level `network` key.
    const net = isObject(raw) && isObject(raw.network) ? raw.network : raw;
    const version = isObject(net) ? net.version : undefined;
    if (version === 1) interfaces = v1Interfaces(checked(V1, 'network-config', net), ignored);
    else if (version === 2) interfaces = v2Interfaces(checked(V2, 'network-config', net));
    else throw invalid('network-config', 'version', `expected 1 or 2, got ${schema.shown(version)}`);
  }

  const seed: NocloudSeed = { interfaces, ignored };
  if (meta['instance-id'] !== undefined) seed.instanceId = meta['instance-id'];
  const h = user.hostname ?? user.fqdn ?? meta['local-hostname'];
  if (h !== undefined) seed.hostname = shortName(h);
  const mw = user.milkyway;
  if (mw?.broker !== undefined) seed.broker = mw.broker;
  if (mw?.token !== undefined) {
    let tok: unknown = mw.token;
    if (typeof tok === 'string') {
      try {
        tok = JSON.parse(tok);
      } catch (e) {
        throw invalid('user-data', 'milkyway.token', `not JSON: ${(e as Error).message}`);
      }
    }
    if (!isObject(tok))
      throw invalid('user-data', 'milkyway.token', 'expected an enrollment token (a JSON object)');
    if (JSON.stringify(tok).length > MAX_TOKEN_JSON)
      throw invalid('user-data', 'milkyway.token', `above ${MAX_TOKEN_JSON} bytes`);
    seed.token = tok;
  }
  return seed;
}
