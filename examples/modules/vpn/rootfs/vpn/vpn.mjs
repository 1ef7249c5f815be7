// The vpn module's actions and its boot service (doc/vpn.md): WireGuard with Debian's `wg`
// (packed at /vpn/bin/wg by scripts/pack-vpn-module.sh) and the base's `ip`. Run by the
// base's Node (CoreOS's /usr/bin/node), so plain JavaScript, no imports beyond node:.
// The arguments arrive as one JSON object on stdin, the action's name in $MWAY_ACTION; the
// answer is one JSON value on stdout. Each peer's private key is made here, kept in the
// module's private data (0600) and never printed: answers carry public keys only.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DATA = '/data/secure';
const WG = '/vpn/bin/wg';
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

class Refusal extends Error {}

function tool(file, args, input) {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      timeout: 20_000,
      input: input ?? '',
      env: { PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const why = String(e.stderr ?? '').trim() || e.message;
    throw new Refusal(`${file === WG ? 'wg' : file} ${args.join(' ')}: ${why}`);
  }
}
const ip = (...args) => tool('ip', args);
const wg = (args, input) => tool(WG, args, input);

const dirOf = (name) => join(DATA, 'vpn', name);
const keyFile = (name) => join(dirOf(name), 'private.key');
const confFile = (name) => join(dirOf(name), `${name}.conf`);
const stateFile = (name) => join(dirOf(name), 'state.json');

// Written whole or not at all: a reboot mid-write leaves the old file.
function writeAtomic(file, text) {
  writeFileSync(`${file}.new`, text, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

function publicKeyOf(name) {
  return wg(['pubkey'], `${readFileSync(keyFile(name), 'utf8').trim()}\n`).trim();
}

/** The private key of `name`, made on first use (`wg genkey`), kept 0600. */
function ensureKey(name) {
  mkdirSync(dirOf(name), { recursive: true, mode: 0o700 });
  if (!existsSync(keyFile(name))) writeAtomic(keyFile(name), wg(['genkey']));
  return publicKeyOf(name);
}

/** wg(8)'s configuration format (what `wg setconf` reads), from the signed arguments. */
function render(a, privateKey) {
  const lines = ['[Interface]', `PrivateKey = ${privateKey}`];
  if (a.listenPort !== undefined) lines.push(`ListenPort = ${a.listenPort}`);
  for (const p of a.peers) {
    lines.push('', '[Peer]', `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.allowedIps.split(',').join(', ')}`);
    if (p.endpoint !== undefined) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.keepalive !== undefined && p.keepalive > 0) lines.push(`PersistentKeepalive = ${p.keepalive}`);
  }
  return `${lines.join('\n')}\n`;
}

const toInt = (a) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
/** Whether `cidr` lies inside the network of `address` (both a.b.c.d/n). */
function inside(cidr, address) {
  const [a, n] = cidr.split('/');
  const [b, m] = address.split('/');
  if (Number(n) < Number(m)) return false;
  const mask = Number(m) === 0 ? 0 : (0xffffffff << (32 - Number(m))) >>> 0;
  return ((toInt(a) & mask) >>> 0) === ((toInt(b) & mask) >>> 0);
}

// Read from /proc/net/dev, not `ip link show`: asking the kernel for a device it lacks, with
// CAP_NET_ADMIN, makes it try to load a module `netdev-NAME` (an SELinux module_request denial).
function linkExists(name) {
  return readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .some((l) => l.split(':')[0].trim() === name);
}

/** Brings `name` up as its stored state says: the link, its keys and peers, its address, routes. */
function up(name) {
  const s = JSON.parse(readFileSync(stateFile(name), 'utf8'));
  if (!linkExists(name)) {
    try {
      ip('link', 'add', name, 'type', 'wireguard');
    } catch (e) {
      throw new Refusal(
        `Cannot create the WireGuard interface ${name}: ${e.message} (this kernel has no wireguard module loaded; the image spec's coreos.kernelModules loads it at boot)`,
      );
    }
  }
  wg(['setconf', name, confFile(name)]);
  ip('address', 'flush', 'dev', name);
  ip('address', 'add', s.address, 'dev', name);
  ip('link', 'set', name, 'up');
  // Routes for what peers carry beyond the tunnel's own network (the address's prefix has its route).
  for (const p of s.peers) {
    for (const c of p.allowedIps.split(',')) if (!inside(c, s.address)) ip('route', 'replace', c, 'dev', name);
  }
}

function down(name) {
  if (linkExists(name)) ip('link', 'delete', name);
}

/** `wg show NAME dump` without its first line's private key: the peers' live state by public key. */
function live(name) {
  if (!linkExists(name)) return undefined;
  const lines = wg(['show', name, 'dump']).trim().split('\n');
  const peers = {};
  for (const l of lines.slice(1)) {
    const [publicKey, , endpoint, allowedIps, handshake, rx, tx, keepalive] = l.split('\t');
    peers[publicKey] = {
      endpoint: endpoint === '(none)' ? null : endpoint,
      allowedIps: allowedIps === '(none)' ? [] : allowedIps.split(','),
      latestHandshake: Number(handshake) === 0 ? null : new Date(Number(handshake) * 1000).toISOString(),
      rxBytes: Number(rx),
      txBytes: Number(tx),
      keepalive: keepalive === 'off' ? 0 : Number(keepalive),
    };
  }
  const listenPort = Number(lines[0]?.split('\t')[2]);
  return { listenPort, peers };
}

function names() {
  if (!existsSync(join(DATA, 'vpn'))) return [];
  return readdirSync(join(DATA, 'vpn'))
    .filter((n) => existsSync(stateFile(n)))
    .sort();
}

function statusOf(name) {
  const s = JSON.parse(readFileSync(stateFile(name), 'utf8'));
  const l = live(name);
  return {
    name,
    role: s.role,
    address: s.address,
    publicKey: publicKeyOf(name),
    ...(s.listenPort === undefined ? {} : { listenPort: s.listenPort }),
    up: l !== undefined,
    peers: s.peers.map((p) => ({ ...p, ...(l?.peers[p.publicKey] ?? {}) })),
  };
}

const actions = {
  key(a) {
    return { name: a.name, publicKey: ensureKey(a.name) };
  },
  configure(a) {
    const publicKey = ensureKey(a.name);
    if (a.peers.some((p) => p.publicKey === publicKey))
      throw new Refusal(`Peer list of ${a.name} holds this peer's own public key`);
    const state = {
      v: 1,
      name: a.name,
      role: a.role,
      address: a.address,
      ...(a.listenPort === undefined ? {} : { listenPort: a.listenPort }),
      peers: a.peers,
    };
    const conf = render(a, readFileSync(keyFile(a.name), 'utf8').trim());
    writeAtomic(confFile(a.name), conf);
    writeAtomic(stateFile(a.name), `${JSON.stringify(state, null, 2)}\n`);
    if (a.up !== false) up(a.name);
    return { ...statusOf(a.name), stored: true };
  },
  status(a) {
    const list = a.name === undefined ? names() : names().filter((n) => n === a.name);
    return { vpns: list.map(statusOf) };
  },
  remove(a) {
    if (!existsSync(stateFile(a.name))) return { name: a.name, removed: false, change: 'unchanged' };
    if (a.peers === undefined) {
      down(a.name);
      rmSync(dirOf(a.name), { recursive: true, force: true });
      return { name: a.name, removed: true };
    }
    // Revocation: the named peers leave the hub's configuration and its live interface.
    const s = JSON.parse(readFileSync(stateFile(a.name), 'utf8'));
    const gone = s.peers.filter((p) => a.peers.includes(p.peer));
    s.peers = s.peers.filter((p) => !a.peers.includes(p.peer));
    writeAtomic(confFile(a.name), render(s, readFileSync(keyFile(a.name), 'utf8').trim()));
    writeAtomic(stateFile(a.name), `${JSON.stringify(s, null, 2)}\n`);
    if (linkExists(a.name)) for (const p of gone) wg(['set', a.name, 'peer', p.publicKey, 'remove']);
    return { ...statusOf(a.name), revoked: gone.map((p) => p.peer) };
  },
  ping(a) {
    const count = a.count ?? 3;
    let text;
    try {
      text = execFileSync('ping', ['-c', String(count), '-W', '2', a.address], {
        encoding: 'utf8',
        timeout: 20_000 + count * 3000,
        env: { PATH },
      });
    } catch (e) {
      text = String(e.stdout ?? '');
    }
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
    return { address: a.address, transmitted: Number(m?.[1] ?? count), received: Number(m?.[2] ?? 0) };
  },
};

// The boot service: every stored VPN comes back up (the state lives in the module's private data).
function restore() {
  let failed = 0;
  for (const n of names()) {
    try {
      up(n);
      console.log(`vpn: ${n} up`);
    } catch (e) {
      failed++;
      console.error(`vpn: ${n}: ${e.message}`);
    }
  }
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv[2] === 'restore') restore();
else {
  const action = actions[process.env.MWAY_ACTION ?? ''];
  try {
    if (action === undefined) throw new Refusal(`No action ${process.env.MWAY_ACTION}`);
    const args = JSON.parse(readFileSync(0, 'utf8') || '{}');
    process.stdout.write(`${JSON.stringify(action(args))}\n`);
  } catch (e) {
    process.stderr.write(`vpn ${process.env.MWAY_ACTION}: ${e instanceof Refusal ? e.message : e.stack}\n`);
    process.exitCode = 1;
  }
}
