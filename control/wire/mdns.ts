// mDNS (RFC 6762/6763) advertisement of the broker as `_milkyway._tcp.local`, with the
// SHA-256 fingerprint of its certificate in the TXT record, and the browse helper peers
// use when their config names no broker. Discovery only says where to connect: the peer
// still accepts only a broker whose certificate chains to its user root (transport.ts),
// and the TXT fingerprint pins which one, so a spoofed answer costs at most a failed
// connection.
import { networkInterfaces } from 'node:os';
import type makeMdns from 'multicast-dns';
import { ControlError } from './control-error.ts';

export const SERVICE = '_milkyway._tcp.local';
/** mDNS answer TTL (seconds): short, so a moved broker is found again quickly. */
const TTL = 120;

type Mdns = ReturnType<typeof makeMdns>;

/** multicast-dns is loaded on first use: an agent that is given its broker never loads it. */
async function loadMdns(): Promise<typeof makeMdns> {
  return (await import('multicast-dns')).default;
}
type Answer = NonNullable<Parameters<Mdns['respond']>[0] extends infer R ? R : never>;

export interface MdnsSocketOptions {
  /** IPv4 address of the interface to send multicast on (needed when there is no default route). */
  interface?: string;
  /** UDP port (default 5353; tests may use another). */
  mdnsPort?: number;
}

function socketOptions(o: MdnsSocketOptions): Parameters<typeof makeMdns>[0] {
  // Bind the wildcard address: bound to a unicast address, Linux drops multicast datagrams.
  return {
    ...(o.interface === undefined ? {} : { interface: o.interface, bind: '0.0.0.0' }),
    ...(o.mdnsPort === undefined ? {} : { port: o.mdnsPort }),
  };
}

/** IPv4 addresses to announce: the one given, or every non-internal interface address. */
function localAddresses(only?: string): string[] {
  if (only !== undefined && only !== '0.0.0.0') return [only];
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
  }
  return out.length === 0 ? ['127.0.0.1'] : out;
}

export interface Advertisement {
  stop(): Promise<void>;
}

/**
 * Answers queries for `_milkyway._tcp.local` with PTR, SRV, TXT (`fp=`, `v=1`) and A records,
 * and announces once at start.
 */
export async function advertiseBroker(
  o: MdnsSocketOptions & { name: string; port: number; fingerprint: string; host?: string },
): Promise<Advertisement> {
  const mdns = (await loadMdns())(socketOptions(o));
  const instance = `${o.name}.${SERVICE}`;
  const target = `${o.name}.local`;
  const records = (): Answer => {
    const addrs = localAddresses(o.host ?? o.interface);
    return {
      answers: [{ name: SERVICE, type: 'PTR', ttl: TTL, data: instance }],
      additionals: [
        { name: instance, type: 'SRV', ttl: TTL, data: { port: o.port, target, priority: 0, weight: 0 } },
        {
          name: instance,
          type: 'TXT',
          ttl: TTL,
          data: [Buffer.from('v=1'), Buffer.from(`fp=${o.fingerprint}`)],
        },
        ...addrs.map((a) => ({ name: target, type: 'A' as const, ttl: TTL, data: a })),
      ],
    } as Answer;
  };
  await new Promise<void>((resolve, reject) => {
    mdns.once('ready', () => resolve());
    mdns.once('error', (e: Error) =>
      reject(new ControlError('E_MDNS', `Cannot start mDNS responder: ${e.message}`, { cause: e })),
    );
  });
  mdns.on('query', (q) => {
    const qs = (q.questions ?? []) as Array<{ type: string; name: string }>;
    if (qs.some((x) => (x.type === 'PTR' || x.type === 'ANY') && x.name.toLowerCase() === SERVICE)) {
      mdns.respond(records());
    }
  });
  mdns.on('warning', () => {});
  mdns.respond(records());
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        mdns.destroy(() => resolve());
      }),
  };
}

export interface FoundBroker {
  /** `ip:port` to pass to connectBroker. */
  address: string;
  /** The certificate fingerprint from TXT (pass as brokerFingerprint). */
  fingerprint?: string;
  name: string;
}

/**
 * Queries `_milkyway._tcp.local` (repeating every second) until an answer with a port and
 * an address arrives or `timeoutMs` passes; undefined when nothing answered.
 */
export async function browseBroker(
  o: MdnsSocketOptions & { timeoutMs?: number } = {},
): Promise<FoundBroker | undefined> {
  const mdns = (await loadMdns())(socketOptions(o));
  mdns.on('warning', () => {});
  const timeoutMs = o.timeoutMs ?? 3000;
  try {
    return await new Promise<FoundBroker | undefined>((resolve, reject) => {
      const done = (v: FoundBroker | undefined): void => {
        clearTimeout(timer);
        clearInterval(ask);
        resolve(v);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const query = (): void => mdns.query({ questions: [{ name: SERVICE, type: 'PTR' }] });
      const ask = setInterval(query, 1000);
      mdns.once('error', (e: Error) => {
        clearTimeout(timer);
        clearInterval(ask);
        reject(new ControlError('E_MDNS', `Cannot browse mDNS: ${e.message}`, { cause: e }));
      });
      mdns.on('response', (r, rinfo) => {
        const all = [...(r.answers ?? []), ...(r.additionals ?? [])] as Array<{
          type: string;
          name: string;
          data?: unknown;
        }>;
        const ptr = all.find((a) => a.type === 'PTR' && a.name.toLowerCase() === SERVICE);
        if (ptr === undefined) return;
        const instance = String(ptr.data);
        const srv = all.find((a) => a.type === 'SRV' && a.name === instance);
        if (srv === undefined) return;
        const { port, target } = srv.data as { port: number; target: string };
        // Prefer the address the answer came from (reachable by construction) when announced.
        const as = all.filter((x) => x.type === 'A' && x.name === target).map((x) => String(x.data));
        const ip = as.length === 0 || as.includes(rinfo.address) ? rinfo.address : (as[0] as string);
        const txt = all.find((x) => x.type === 'TXT' && x.name === instance);
        let fingerprint: string | undefined;
        for (const item of (txt?.data as Buffer[] | undefined) ?? []) {
          const s = Buffer.from(item).toString('utf8');
          if (s.startsWith('fp=') && /^[0-9a-f]{64}$/.test(s.slice(3))) fingerprint = s.slice(3);
        }
        done({
          address: `${ip}:${port}`,
          name: instance.slice(0, -SERVICE.length - 1),
          ...(fingerprint === undefined ? {} : { fingerprint }),
        });
      });
      mdns.once('ready', query);
    });
  } finally {
    await new Promise<void>((r) => mdns.destroy(() => r()));
  }
}
