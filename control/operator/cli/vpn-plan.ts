// The operator's half of `mway vpn` (doc/vpn.md), as pure functions: the flags checked before
// anything is signed, tunnel addresses handed out in peer-id order, the hub's endpoint taken
// from its signed facts, and the `configure` arguments of the hub and of each spoke. The vpn
// module on each peer checks the same arguments against its manifest's schema again.
import { isIPv4 } from 'node:net';
import { usageError } from '../operator-error.ts';
import { OperatorError } from '../operator-error.ts';

/** A VPN's name, also its interface's on every member (IFNAMSIZ leaves 15 characters). */
export const VPN_NAME = /^[a-z][a-z0-9-]{0,14}$/;
export const DEFAULT_PORT = 51820;
export const DEFAULT_KEEPALIVE = 25;

export interface Net {
  /** The network address as a 32-bit number. */
  base: number;
  prefix: number;
}

const toInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** `a.b.c.d/n` as a network; E_USAGE naming the flag when it is not one (host bits set, …). */
export function parseNet(text: string, flag: string): Net {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const prefix = Number(m?.[2]);
  if (m === null || !isIPv4(m[1] as string) || !(prefix >= 0 && prefix <= 32))
    throw usageError(`${flag} ${JSON.stringify(text)} is not an IPv4 network (a.b.c.d/n)`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const ip = toInt(m[1] as string);
  if ((ip & mask) >>> 0 !== ip)
    throw usageError(
      `${flag} ${text} has host bits set: the network is ${toIp((ip & mask) >>> 0)}/${prefix}`,
    );
  return { base: ip, prefix };
}

export const netText = (n: Net): string => `${toIp(n.base)}/${n.prefix}`;

/** The tunnel's network from --network: room for the hub and at least one peer (/30 or wider). */
export function tunnelNet(text: string): Net {
  const n = parseNet(text, '--network');
  if (n.prefix > 30) throw usageError(`--network ${text} has no room for a hub and a peer (/30 at most)`);
  return n;
}

/** Host `i` of the network (1 = the hub), with the network's prefix. */
export function hostAddress(n: Net, i: number): string {
  return `${toIp(n.base + i)}/${n.prefix}`;
}

/** Whether `address` (a.b.c.d, with or without /n) lies in `n`. */
export function inNet(n: Net, address: string): boolean {
  const ip = address.split('/')[0] as string;
  if (!isIPv4(ip)) return false;
  const mask = n.prefix === 0 ? 0 : (0xffffffff << (32 - n.prefix)) >>> 0;
  return (toInt(ip) & mask) >>> 0 === n.base;
}

/**
 * The next free host numbers for `peers` (in peer-id order, so the same set of peers always
 * gets the same addresses), skipping `taken` (host numbers already in the VPN).
 */
export function allocate(n: Net, peers: readonly string[], taken: ReadonlySet<number>): Map<string, string> {
  const last = 2 ** (32 - n.prefix) - 2;
  const out = new Map<string, string>();
  let i = 2;
  for (const p of [...peers].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    while (taken.has(i)) i++;
    if (i > last) {
      throw new OperatorError(
        'E_VPN_ADDRESSES',
        `Network ${netText(n)} has no address left for ${p} (${last - 1} peers at most beside the hub)`,
      );
    }
    out.set(p, hostAddress(n, i));
    i++;
  }
  return out;
}

/** The host number of `address` in `n`. */
export function hostNumber(n: Net, address: string): number {
  return toInt(address.split('/')[0] as string) - n.base;
}

/** --port and --keepalive: whole numbers in range (E_USAGE otherwise). */
export function intFlag(
  value: string | undefined,
  flag: string,
  min: number,
  max: number,
  dflt: number,
): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw usageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

export function vpnName(name: string): string {
  if (!VPN_NAME.test(name))
    throw usageError(
      `VPN name ${JSON.stringify(name)} must be a-z, 0-9 and -, starting with a letter, at most 15 (it names the interface)`,
    );
  return name;
}

/**
 * The hub's endpoint: `--endpoint A.B.C.D[:PORT]` as given, else its address in
 * `--endpoint-net` from its signed facts, else its first IPv4 that is not loopback and not in
 * the tunnel (interfaces in name order).
 */
export function hubEndpoint(o: {
  hub: string;
  facts: Record<string, unknown> | undefined;
  tunnel: Net;
  port: number;
  endpoint?: string | undefined;
  endpointNet?: string | undefined;
}): string {
  if (o.endpoint !== undefined) {
    const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(o.endpoint);
    if (m === null || !isIPv4(m[1] as string))
      throw usageError(`--endpoint ${JSON.stringify(o.endpoint)} is not an IPv4 address[:port]`);
    const port = m[2] === undefined ? o.port : intFlag(m[2], '--endpoint port', 1, 65535, o.port);
    return `${m[1]}:${port}`;
  }
  const within = o.endpointNet === undefined ? undefined : parseNet(o.endpointNet, '--endpoint-net');
  const a = o.facts?.addresses;
  const byIface =
    typeof a === 'object' && a !== null && !Array.isArray(a) ? (a as Record<string, unknown>) : {};
  const candidates = Object.keys(byIface)
    .sort()
    .flatMap((k) => (Array.isArray(byIface[k]) ? (byIface[k] as unknown[]) : []))
    .filter((x): x is string => typeof x === 'string')
    .map((x) => x.split('/')[0] as string)
    .filter((x) => isIPv4(x) && !x.startsWith('127.') && !inNet(o.tunnel, x))
    .filter((x) => within === undefined || inNet(within, x));
  const first = candidates[0];
  if (first === undefined) {
    throw new OperatorError(
      'E_VPN_ENDPOINT',
      `The hub ${o.hub}'s signed facts hold no IPv4 address${within === undefined ? ' beside loopback and the tunnel' : ` in ${o.endpointNet}`}; give --endpoint`,
    );
  }
  return `${first}:${o.port}`;
}

export interface VpnPeerEntry {
  peer: string;
  publicKey: string;
  address?: string;
  allowedIps: string;
  endpoint?: string;
  keepalive?: number;
}

export interface ConfigureArgs {
  name: string;
  role: 'hub' | 'spoke';
  address: string;
  listenPort?: number;
  up?: boolean;
  peers: VpnPeerEntry[];
}

/** The hub's `configure`: every spoke by its public key, routed to its own /32. */
export function hubConfig(o: {
  name: string;
  tunnel: Net;
  port: number;
  up: boolean;
  spokes: ReadonlyArray<{ peer: string; publicKey: string; address: string }>;
}): ConfigureArgs {
  return {
    name: o.name,
    role: 'hub',
    address: hostAddress(o.tunnel, 1),
    listenPort: o.port,
    ...(o.up ? {} : { up: false }),
    peers: [...o.spokes]
      .sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
      .map((s) => ({
        peer: s.peer,
        publicKey: s.publicKey,
        address: s.address,
        allowedIps: `${s.address.split('/')[0]}/32`,
      })),
  };
}

/** A spoke's `configure`: the hub alone, for the whole tunnel and the routes behind it. */
export function spokeConfig(o: {
  name: string;
  tunnel: Net;
  address: string;
  up: boolean;
  hub: { peer: string; publicKey: string; endpoint: string };
  routes: readonly string[];
  keepalive: number;
}): ConfigureArgs {
  return {
    name: o.name,
    role: 'spoke',
    address: o.address,
    ...(o.up ? {} : { up: false }),
    peers: [
      {
        peer: o.hub.peer,
        publicKey: o.hub.publicKey,
        address: hostAddress(o.tunnel, 1),
        allowedIps: [netText(o.tunnel), ...o.routes].join(','),
        endpoint: o.hub.endpoint,
        ...(o.keepalive > 0 ? { keepalive: o.keepalive } : {}),
      },
    ],
  };
}
