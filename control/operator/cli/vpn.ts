// `mway vpn create|add|remove|status` (doc/vpn.md): WireGuard between peers through the fleet's
// vpn module (the module that adds the verb `vpn`). Every step is a signed `module.run` of one
// of its actions: `key` (each member makes its own private key and answers the public one),
// `configure` (the hub's peers, a spoke's hub, addresses in peer-id order, the hub's endpoint
// from its signed facts), `status`, `remove`. The VPN's state lives on the members (the
// module's private data); the hub's signed `status` answer is where `add` and `remove` read it.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_FAIL, EXIT_OK, output } from '../../../common/index.ts';
import { MODULE_RUN } from '../../wire/index.ts';
import { type FleetModule, findModule, fleetModules } from '../fleet-modules.ts';
import type { MemberReport, OperatorClient, PeerReport } from '../operator-client.ts';
import { OperatorError, usageError } from '../operator-error.ts';
import { targetOf, withClient } from './shared.ts';
import {
  allocate,
  type ConfigureArgs,
  DEFAULT_KEEPALIVE,
  DEFAULT_PORT,
  hostAddress,
  hostNumber,
  hubConfig,
  hubEndpoint,
  intFlag,
  type Net,
  netText,
  parseNet,
  spokeConfig,
  tunnelNet,
  vpnName,
} from './vpn-plan.ts';

const MODULE_VERB = 'vpn';

const pickArgs = {
  group: {
    type: 'string',
    alias: 'peer-group',
    description: 'Members: a group (or comma-separated groups); --peer-group is the same',
  },
  peer: { type: 'string', description: 'Members: peer ids, addresses or networks, comma-separated' },
  target: { type: 'string', description: 'Members: a target expression (group:G, net:CIDR, …)' },
} as const;
const waitArg = {
  timeout: { type: 'string', description: 'Seconds to wait for each step’s results (default 60)' },
} as const;

interface VpnStatus {
  name: string;
  role: 'hub' | 'spoke';
  address: string;
  publicKey: string;
  listenPort?: number;
  up: boolean;
  peers: Array<{
    peer: string;
    publicKey: string;
    address?: string;
    allowedIps: string;
    endpoint?: string | null;
    latestHandshake?: string | null;
    rxBytes?: number;
    txBytes?: number;
  }>;
}

/** One session of `mway vpn`: the module, its manifest binding, and each step as a signed job. */
class Vpn {
  readonly c: OperatorClient;
  readonly module: FleetModule[];
  readonly timeoutMs: number;
  readonly jobs: string[] = [];

  constructor(c: OperatorClient, modules: FleetModule[], timeout: string | undefined) {
    this.c = c;
    this.module = modules;
    const s = timeout === undefined ? 60 : Number(timeout);
    if (!(s > 0 && s <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
    this.timeoutMs = s * 1000;
  }

  static async open(c: OperatorClient, timeout: string | undefined): Promise<Vpn> {
    return new Vpn(c, findModule(fleetModules(c, await c.peers()), MODULE_VERB, 'verb'), timeout);
  }

  /** The peers reporting the module: every one, or E_MODULE_UNKNOWN naming those without it. */
  requireModule(peers: readonly string[]): void {
    const have = new Set(this.module.flatMap((m) => m.peers));
    const without = peers.filter((p) => !have.has(p));
    if (without.length > 0) {
      throw new OperatorError(
        'E_MODULE_UNKNOWN',
        `${without.join(', ')} report${without.length === 1 ? 's' : ''} no vpn module (install it first: doc/vpn.md); nothing was signed`,
      );
    }
  }

  /** The manifest a command to `peers` is bound to: theirs when they all run one version. */
  #manifest(peers: readonly string[]): string | undefined {
    const used = this.module.filter((m) => m.peers.some((p) => peers.includes(p)));
    return used.length === 1 ? used[0]?.manifest : undefined;
  }

  get moduleName(): string {
    return this.module[0]?.name ?? MODULE_VERB;
  }

  /** Runs `action` on `peers` with one set of arguments; every peer's verified report. */
  async step(action: string, peers: readonly string[], args: object): Promise<PeerReport[]> {
    const manifest = this.#manifest(peers);
    const r = await this.c.run({
      action: MODULE_RUN,
      target: peers.map((p) => `peer:${p}`).join(','),
      args: { module: this.moduleName, action, args, ...(manifest === undefined ? {} : { manifest }) },
      timeoutMs: this.timeoutMs,
    });
    if (r.jobId !== '') this.jobs.push(r.jobId);
    return r.peers;
  }

  /** `step`, and E_VPN_STEP naming each peer that did not succeed. */
  async must(action: string, peers: readonly string[], args: object): Promise<Map<string, unknown>> {
    const reports = await this.step(action, peers, args);
    const bad = reports.filter((p) => p.outcome !== 'ok');
    if (bad.length > 0) {
      const stderr = (p: PeerReport) =>
        ((p.output as { stderr?: string } | undefined)?.stderr ?? '').trim().split('\n').slice(-2).join(' ');
      throw new OperatorError(
        'E_VPN_STEP',
        `vpn ${action} failed on ${bad.map((p) => `${p.peer} (${p.outcome}${p.code === undefined ? '' : ` ${p.code}`}${stderr(p) === '' ? '' : `: ${stderr(p)}`})`).join(', ')}`,
        { details: { action, jobs: this.jobs, peers: bad } },
      );
    }
    return new Map(reports.map((p) => [p.peer, (p.output as { result?: unknown } | undefined)?.result]));
  }

  /** Each member's public key, made by the member itself (`key`). */
  async keys(name: string, peers: readonly string[]): Promise<Map<string, string>> {
    const out = await this.must('key', peers, { name });
    return new Map([...out].map(([p, r]) => [p, (r as { publicKey: string }).publicKey]));
  }

  /** `status {name}` on every peer reporting the module: the members' signed views of `name`. */
  async survey(name: string | undefined): Promise<Array<{ peer: string; vpn: VpnStatus }>> {
    const peers = this.module.flatMap((m) => m.peers);
    const reports = await this.step('status', peers, name === undefined ? {} : { name });
    return reports.flatMap((p) =>
      p.outcome !== 'ok'
        ? []
        : ((p.output as { result?: { vpns?: VpnStatus[] } }).result?.vpns ?? []).map((vpn) => ({
            peer: p.peer,
            vpn,
          })),
    );
  }

  /** The hub of `name` and its signed view (E_VPN_UNKNOWN when no member says it is the hub). */
  async hubOf(
    name: string,
  ): Promise<{ hub: string; view: VpnStatus; all: Array<{ peer: string; vpn: VpnStatus }> }> {
    const all = await this.survey(name);
    const hubs = all.filter((x) => x.vpn.role === 'hub');
    const first = hubs[0];
    if (first === undefined)
      throw new OperatorError(
        'E_VPN_UNKNOWN',
        `No online peer is the hub of a VPN named ${name} (see mway vpn status)`,
      );
    if (hubs.length > 1)
      throw new OperatorError(
        'E_VPN_UNKNOWN',
        `${hubs.map((h) => h.peer).join(' and ')} both say they are the hub of ${name}`,
      );
    return { hub: first.peer, view: first.vpn, all };
  }

  /** The peers `--group/--peer/--target` names (resolved as a real run would, nothing signed). */
  async members(a: {
    group?: string | undefined;
    peer?: string | undefined;
    target?: string | undefined;
  }): Promise<string[]> {
    const dry = await this.c.run({ action: MODULE_RUN, target: targetOf(a), dryRun: true });
    return dry.peers.map((p) => p.peer);
  }

  /** Spokes configured in parallel, one signed command each (each has its own address). */
  async configureSpokes(configs: ReadonlyMap<string, ConfigureArgs>): Promise<Map<string, unknown>> {
    const done = await Promise.all([...configs].map(([p, args]) => this.must('configure', [p], args)));
    return new Map(done.flatMap((m) => [...m]));
  }
}

/** `--into-group G`: the VPN's members made members of group G (created when it is new). */
async function intoGroup(
  c: OperatorClient,
  group: string | undefined,
  peers: readonly string[],
): Promise<MemberReport[] | undefined> {
  if (group === undefined) return undefined;
  if (!(await c.groups()).some((g) => g.group === group)) await c.createGroup(group);
  return c.changeMembers(group, peers, true, { timeoutMs: 30_000 });
}

/**
 * The exit code after `--into-group`: 1 when a member refused or could not check its membership
 * (the VPN itself is made; the refusals are named on stderr), 0 otherwise (offline: queued).
 */
function groupExit(reports: MemberReport[] | undefined): number {
  const bad = (reports ?? []).filter((r) => r.outcome === 'refused' || r.outcome === 'invalid');
  if (bad.length === 0) return EXIT_OK;
  process.stderr.write(
    `mway: the VPN is made, but the group membership was refused by ${bad.map((r) => `${r.peer} (${r.code ?? r.outcome}: ${r.message ?? ''})`).join(', ')}\n`,
  );
  return EXIT_FAIL;
}

const configArgs = {
  port: { type: 'string', description: `The hub's UDP port (default ${DEFAULT_PORT})` },
  keepalive: {
    type: 'string',
    description: `Seconds between a spoke's keepalives to the hub, 0 for none (default ${DEFAULT_KEEPALIVE})`,
  },
  route: {
    type: 'string',
    description: 'Networks behind the hub the spokes route into the tunnel, comma-separated',
  },
  up: {
    type: 'boolean',
    default: true,
    description:
      'Bring the tunnel up now (--no-up: store the configuration only; it comes up at the next boot)',
  },
  'into-group': {
    type: 'string',
    description: "Make the VPN's members members of this group (created if new)",
  },
} as const;

function routesOf(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split(',').map((r) => netText(parseNet(r.trim(), '--route')));
}

function summary(
  name: string,
  tunnel: Net,
  hub: { peer: string; address: string; endpoint: string },
  spokes: Array<{ peer: string; address: string }>,
): string {
  return [
    `vpn ${name} ${netText(tunnel)}: hub ${hub.peer} ${hub.address} at ${hub.endpoint}`,
    ...spokes.map((s) => `  ${s.peer} ${s.address}`),
  ].join('\n');
}

const create = defineCommand({
  meta: { name: 'create', description: 'Make a VPN: a hub, an address range and its first members' },
  args: {
    ...commonArgs,
    ...pickArgs,
    ...waitArg,
    ...configArgs,
    name: { type: 'positional', required: true, description: 'The VPN (and interface) name' },
    hub: { type: 'string', required: true, description: 'The peer that is the hub' },
    network: {
      type: 'string',
      required: true,
      description: 'The tunnel network, e.g. 10.10.0.0/24 (the hub gets .1)',
    },
    endpoint: {
      type: 'string',
      description: "The hub's address[:port] the spokes dial (default: from its signed facts)",
    },
    'endpoint-net': {
      type: 'string',
      description: "Take the hub's address in this network from its signed facts",
    },
  },
  run({ args }) {
    // Every flag is checked before anything is signed or even connected.
    const name = vpnName(String(args.name));
    const tunnel = tunnelNet(String(args.network));
    const port = intFlag(args.port, '--port', 1, 65535, DEFAULT_PORT);
    const keepalive = intFlag(args.keepalive, '--keepalive', 0, 65535, DEFAULT_KEEPALIVE);
    const routes = routesOf(args.route);
    const hubId = String(args.hub);
    const up = args.up !== false;
    const withSpokes = args.group !== undefined || args.peer !== undefined || args.target !== undefined;
    if (withSpokes) targetOf(args);
    return withClient(async (c) => {
      const v = await Vpn.open(c, args.timeout);
      const spokes = withSpokes ? (await v.members(args)).filter((p) => p !== hubId) : [];
      v.requireModule([hubId, ...spokes]);
      const hubView = (await c.peers()).find((p) => p.peerId === hubId);
      const endpoint = hubEndpoint({
        hub: hubId,
        facts: hubView === undefined ? undefined : c.verifiedFacts(hubView),
        tunnel,
        port,
        endpoint: args.endpoint,
        endpointNet: args['endpoint-net'],
      });
      const existing = (await v.survey(name)).filter((x) => x.vpn.role === 'hub');
      if (existing.length > 0)
        throw new OperatorError(
          'E_VPN_EXISTS',
          `${existing.map((x) => x.peer).join(', ')} already hub(s) of ${name}: use mway vpn add`,
        );
      const addresses = allocate(tunnel, spokes, new Set([1]));
      const keys = await v.keys(name, [hubId, ...spokes]);
      const hubKey = keys.get(hubId) as string;
      const members = spokes.map((p) => ({
        peer: p,
        publicKey: keys.get(p) as string,
        address: addresses.get(p) as string,
      }));
      await v.must('configure', [hubId], hubConfig({ name, tunnel, port, up, spokes: members }));
      await v.configureSpokes(
        new Map(
          members.map((s) => [
            s.peer,
            spokeConfig({
              name,
              tunnel,
              address: s.address,
              up,
              hub: { peer: hubId, publicKey: hubKey, endpoint },
              routes,
              keepalive,
            }),
          ]),
        ),
      );
      const group = await intoGroup(c, args['into-group'], [hubId, ...spokes]);
      const hub = { peer: hubId, address: hostAddress(tunnel, 1), publicKey: hubKey, endpoint };
      const result = {
        name,
        network: netText(tunnel),
        up,
        hub,
        peers: members,
        jobs: v.jobs,
        ...(group === undefined ? {} : { group: { name: args['into-group'], members: group } }),
      };
      output(args.json, result, () => summary(name, tunnel, hub, members));
      return groupExit(group);
    });
  },
});

const add = defineCommand({
  meta: {
    name: 'add',
    description: "Add members to a VPN: their keys made on them, the hub's peers updated",
  },
  args: {
    ...commonArgs,
    ...pickArgs,
    ...waitArg,
    ...configArgs,
    name: { type: 'positional', required: true, description: 'The VPN name' },
    endpoint: { type: 'string', description: "The hub's address[:port] (default: from its signed facts)" },
    'endpoint-net': {
      type: 'string',
      description: "Take the hub's address in this network from its signed facts",
    },
  },
  run({ args }) {
    const name = vpnName(String(args.name));
    const keepalive = intFlag(args.keepalive, '--keepalive', 0, 65535, DEFAULT_KEEPALIVE);
    const routes = routesOf(args.route);
    const up = args.up !== false;
    targetOf(args);
    if (args.port !== undefined) throw usageError('--port is the hub’s and set by mway vpn create');
    return withClient(async (c) => {
      const v = await Vpn.open(c, args.timeout);
      const { hub, view } = await v.hubOf(name);
      const net = tunnelFromAddress(view.address);
      const inVpn = new Set(view.peers.map((p) => p.peer));
      const fresh = (await v.members(args)).filter((p) => p !== hub && !inVpn.has(p));
      if (fresh.length === 0) throw usageError(`Every peer named is already in ${name} (or is its hub)`);
      v.requireModule(fresh);
      const port = view.listenPort ?? DEFAULT_PORT;
      const hubView = (await c.peers()).find((p) => p.peerId === hub);
      const endpoint = hubEndpoint({
        hub,
        facts: hubView === undefined ? undefined : c.verifiedFacts(hubView),
        tunnel: net,
        port,
        endpoint: args.endpoint,
        endpointNet: args['endpoint-net'],
      });
      const taken = new Set([
        1,
        ...view.peers.flatMap((p) => (p.address === undefined ? [] : [hostNumber(net, p.address)])),
      ]);
      const addresses = allocate(net, fresh, taken);
      const keys = await v.keys(name, fresh);
      const old = view.peers.map((p) => ({ peer: p.peer, publicKey: p.publicKey, address: p.address ?? '' }));
      const added = fresh.map((p) => ({
        peer: p,
        publicKey: keys.get(p) as string,
        address: addresses.get(p) as string,
      }));
      await v.must(
        'configure',
        [hub],
        hubConfig({ name, tunnel: net, port, up, spokes: [...old, ...added] }),
      );
      await v.configureSpokes(
        new Map(
          added.map((s) => [
            s.peer,
            spokeConfig({
              name,
              tunnel: net,
              address: s.address,
              up,
              hub: { peer: hub, publicKey: view.publicKey, endpoint },
              routes,
              keepalive,
            }),
          ]),
        ),
      );
      const group = await intoGroup(c, args['into-group'], fresh);
      const result = {
        name,
        network: netText(net),
        hub: { peer: hub, address: view.address, endpoint },
        added,
        jobs: v.jobs,
        ...(group === undefined ? {} : { group: { name: args['into-group'], members: group } }),
      };
      output(args.json, result, () =>
        summary(name, net, { peer: hub, address: view.address, endpoint }, added),
      );
      return groupExit(group);
    });
  },
});

/** The tunnel's network from a member's address with prefix (10.10.0.7/24 → 10.10.0.0/24). */
function tunnelFromAddress(address: string): Net {
  const [ip, p] = address.split('/');
  const prefix = Number(p);
  const n = (ip as string).split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (n & mask) >>> 0, prefix };
}

const remove = defineCommand({
  meta: {
    name: 'remove',
    description: 'Revoke members on the hub and take their tunnel down, or remove the whole VPN (--all)',
  },
  args: {
    ...commonArgs,
    ...pickArgs,
    ...waitArg,
    name: { type: 'positional', required: true, description: 'The VPN name' },
    all: {
      type: 'boolean',
      description: 'Remove the VPN from the hub and every member (their keys are deleted)',
    },
  },
  run({ args }) {
    const name = vpnName(String(args.name));
    const named = args.group !== undefined || args.peer !== undefined || args.target !== undefined;
    if (named === (args.all === true))
      throw usageError('Give the members to remove (--peer, --group, --target) or --all');
    if (named) targetOf(args);
    return withClient(async (c) => {
      const v = await Vpn.open(c, args.timeout);
      const { hub, view, all } = await v.hubOf(name);
      if (args.all === true) {
        const everyone = [...new Set([hub, ...view.peers.map((p) => p.peer), ...all.map((x) => x.peer)])];
        const reports = await v.step('remove', everyone, { name });
        const result = {
          name,
          removed: reports.map((p) => ({
            peer: p.peer,
            outcome: p.outcome,
            ...(p.code === undefined ? {} : { code: p.code }),
          })),
          jobs: v.jobs,
        };
        output(args.json, result, () =>
          result.removed
            .map((r) => `${r.peer}  ${r.outcome}${r.code === undefined ? '' : ` ${r.code}`}`)
            .join('\n'),
        );
        return reports.every((p) => p.outcome === 'ok') ? EXIT_OK : EXIT_FAIL;
      }
      const inVpn = new Set(view.peers.map((p) => p.peer));
      const gone = (await v.members(args)).filter((p) => inVpn.has(p));
      if (gone.length === 0)
        throw usageError(
          `None of the peers named is a member of ${name} (its hub cannot be removed alone: --all)`,
        );
      // The hub first: once it has dropped their keys they are out, whatever they do themselves.
      await v.must('remove', [hub], { name, peers: gone });
      const reports = await v.step('remove', gone, { name });
      const result = {
        name,
        revoked: gone,
        members: reports.map((p) => ({
          peer: p.peer,
          outcome: p.outcome,
          ...(p.code === undefined ? {} : { code: p.code }),
        })),
        jobs: v.jobs,
      };
      output(args.json, result, () =>
        [
          `revoked on ${hub}: ${gone.join(', ')}`,
          ...result.members.map(
            (r) => `  ${r.peer} tunnel removed: ${r.outcome}${r.code === undefined ? '' : ` ${r.code}`}`,
          ),
        ].join('\n'),
      );
      return EXIT_OK;
    });
  },
});

function ago(iso: string | null | undefined): string {
  if (iso === undefined || iso === null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return `${s} s ago`;
}

const status = defineCommand({
  meta: {
    name: 'status',
    description: "The VPNs' members as they sign it: addresses, up, latest handshakes",
  },
  args: {
    ...commonArgs,
    ...waitArg,
    name: { type: 'positional', required: false, description: 'Only this VPN' },
  },
  run({ args }) {
    const name = args.name === undefined ? undefined : vpnName(String(args.name));
    return withClient(async (c) => {
      const v = await Vpn.open(c, args.timeout);
      const rows = (await v.survey(name)).sort((a, b) =>
        a.vpn.name === b.vpn.name
          ? a.vpn.role === b.vpn.role
            ? a.peer < b.peer
              ? -1
              : 1
            : a.vpn.role === 'hub'
              ? -1
              : 1
          : a.vpn.name < b.vpn.name
            ? -1
            : 1,
      );
      if (name !== undefined && rows.length === 0)
        throw new OperatorError('E_VPN_UNKNOWN', `No online peer is a member of a VPN named ${name}`);
      output(args.json, rows, () =>
        rows.length === 0
          ? 'No peer reports a VPN.'
          : [
              'VPN  PEER  ROLE  ADDRESS  UP  HANDSHAKES',
              ...rows.map(
                (r) =>
                  `${r.vpn.name}  ${r.peer}  ${r.vpn.role}  ${r.vpn.address}  ${r.vpn.up ? 'yes' : 'no'}  ${r.vpn.peers.map((p) => `${p.peer} ${ago(p.latestHandshake)}`).join(', ') || '-'}`,
              ),
            ].join('\n'),
      );
      return EXIT_OK;
    });
  },
});

export default defineCommand({
  meta: {
    name: 'vpn',
    description: 'WireGuard VPNs between peers, through the vpn module: create, add, remove, status',
  },
  subCommands: { create, add, remove, status },
});
