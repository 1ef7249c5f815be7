// `mway group create|add|remove|list|delete` (and the seed's `group --make-peer-group`): groups live on the broker, but a peer is in a
// group only through a membership this operator signs and the peer itself keeps. Every change
// is reported per peer as the peer signed it (applied, or refused with its code); the exit
// code is 0 only when every peer applied it.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_FAIL, EXIT_OK, output, UsageError } from '../../../common/index.ts';
import type { MemberReport, OperatorClient } from '../operator-client.ts';
import { usageError } from '../operator-error.ts';
import { withClient } from './shared.ts';

const waitArgs = {
  timeout: {
    type: 'string',
    numeric: 'number',
    description: "Seconds to wait for the peers' answers (default 30)",
  },
} as const;

function timeoutMs(v: string | undefined): number {
  const s = v === undefined ? 30 : Number(v);
  if (!(Number.isFinite(s) && s > 0 && s <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
  return s * 1000;
}

const create = defineCommand({
  meta: { name: 'create', description: 'Create a group' },
  args: { ...commonArgs, name: { type: 'positional', required: true, description: 'Group name' } },
  run: ({ args }) =>
    withClient(async (c) => {
      await c.createGroup(args.name);
      output(args.json, { group: args.name, created: true }, () => `group ${args.name} created`);
      return 0;
    }),
});

const VERB = { true: ['added', 'to'], false: ['removed', 'from'] } as const;

/** Per-peer lines and the summary; the exit code is 0 only when every peer applied it. */
function report(
  json: boolean | undefined,
  group: string,
  member: boolean,
  peers: MemberReport[],
  extra: Record<string, unknown> = {},
  tail: string[] = [],
): number {
  const applied = peers.filter((p) => p.outcome === 'applied').length;
  const [verb, prep] = VERB[member ? 'true' : 'false'];
  output(json, { group, member, peers, applied, ...extra }, () =>
    [
      ...peers.map((p) => {
        if (p.outcome === 'applied') return `${verb} ${p.peer} ${prep} ${group}`;
        if (p.outcome === 'offline')
          return `${p.peer}: offline, the signed change is queued and applied when it reconnects`;
        if (p.outcome === 'no answer') return `${p.peer}: no answer yet (the change stays queued)`;
        return `${p.peer}: ${p.outcome} ${p.code ?? ''}: ${p.message ?? ''}`;
      }),
      `group ${group}: ${peers.length} peer(s), ${applied} applied, ${peers.length - applied} not applied`,
      ...tail,
    ].join('\n'),
  );
  return applied === peers.length ? EXIT_OK : EXIT_FAIL;
}

async function membersOf(c: OperatorClient, group: string): Promise<string[]> {
  const g = (await c.groups()).find((x) => x.group === group);
  return g?.members ?? [];
}

const remove = defineCommand({
  meta: {
    name: 'delete',
    description: 'Delete a group: signs a removal for every member, then drops the group',
  },
  args: {
    ...commonArgs,
    ...waitArgs,
    name: { type: 'positional', required: true, description: 'Group name' },
  },
  run: ({ args }) =>
    withClient(async (c) => {
      const ms = timeoutMs(args.timeout);
      const members = await membersOf(c, args.name);
      const peers =
        members.length === 0 ? [] : await c.changeMembers(args.name, members, false, { timeoutMs: ms });
      // A refusal means that peer still holds its membership: the group stays (the broker
      // refuses to drop a group someone holds). Offline members get their removal later.
      const held = peers.filter((p) => p.outcome === 'refused' || p.outcome === 'invalid');
      if (held.length > 0) {
        report(args.json, args.name, false, peers, { deleted: false }, [
          `group ${args.name} kept: ${held.length} peer(s) still hold a membership of it`,
        ]);
        return EXIT_FAIL;
      }
      await c.deleteGroup(args.name);
      return report(args.json, args.name, false, peers, { deleted: true }, [`group ${args.name} deleted`]);
    }),
});

/** Peers that are in no group yet (`--all-unassigned`). */
function unassigned(fleet: ReadonlyArray<{ peerId: string; groups?: string[] }>): string[] {
  return fleet.filter((p) => (p.groups ?? []).length === 0).map((p) => p.peerId);
}

function members(change: boolean) {
  return defineCommand({
    meta: {
      name: change ? 'add' : 'remove',
      description: change
        ? 'Add peers to a group (signed memberships); reports what each peer did'
        : 'Remove peers from a group (signed removals); reports what each peer did',
    },
    args: {
      ...commonArgs,
      ...waitArgs,
      name: { type: 'positional', required: true, description: 'Group name' },
      peers: { type: 'positional', required: false, variadic: true, description: 'Peer ids' },
      label: { type: 'string', description: 'Select peers by label K=V' },
      'all-unassigned': { type: 'boolean', description: 'Every peer that is in no group yet' },
    },
    run: ({ args }) =>
      withClient(async (c) => {
        const ms = timeoutMs(args.timeout);
        const named = (args._ ?? []).slice(1).map(String);
        const fleet = await c.peers();
        let ids = named;
        if (args.label !== undefined) {
          const [k, v] = args.label.split('=');
          if (k === undefined || v === undefined || k === '') throw usageError('--label must be K=V');
          ids = ids.concat(fleet.filter((p) => p.labels?.[k] === v).map((p) => p.peerId));
        }
        if (args['all-unassigned'] === true) ids = ids.concat(unassigned(fleet));
        ids = [...new Set(ids)];
        if (ids.length === 0) throw usageError('Name at least one peer, or use --label / --all-unassigned');
        const peers = await c.changeMembers(args.name, ids, change, { timeoutMs: ms });
        return report(args.json, args.name, change, peers);
      }),
  });
}

const list = defineCommand({
  meta: { name: 'list', description: 'List groups and members' },
  args: { ...commonArgs },
  run: ({ args }) =>
    withClient(async (c) => {
      const groups = await c.groups();
      output(args.json, groups, () =>
        groups.length === 0
          ? 'no groups'
          : groups.map((g) => `${g.group}: ${g.members.join(' ') || '(empty)'}`).join('\n'),
      );
      return 0;
    }),
});

const SUBCOMMANDS = 'create, add, remove, list, delete';

export default defineCommand({
  // The seed's spelling (milkyway-README): `mway group --make-peer-group --all-unassigned
  // --name NAME` is `group create NAME` then `group add NAME --all-unassigned`.
  args: {
    ...commonArgs,
    ...waitArgs,
    'make-peer-group': {
      type: 'boolean',
      description:
        'Create the group --name (same as group create NAME; with --all-unassigned, then group add)',
    },
    'all-unassigned': {
      type: 'boolean',
      description: 'With --make-peer-group: add every peer in no group yet',
    },
    name: { type: 'string', description: 'With --make-peer-group: the group to create' },
  },
  subCommands: { create, add: members(true), remove: members(false), list, delete: remove },
  run: ({ args }) => {
    if (args['make-peer-group'] !== true) {
      if (args.name === undefined && args['all-unassigned'] !== true)
        throw new UsageError(`No command given; one of: ${SUBCOMMANDS}`, 'unknown-command');
      throw new UsageError(
        `--name and --all-unassigned without a subcommand need --make-peer-group (or use one of: ${SUBCOMMANDS})`,
        'missing-argument',
        '--make-peer-group',
      );
    }
    const name = args.name;
    if (name === undefined || name === '')
      throw new UsageError('--make-peer-group needs --name NAME', 'missing-argument', '--name');
    const ms = timeoutMs(args.timeout);
    return withClient(async (c) => {
      await c.createGroup(name);
      const ids = args['all-unassigned'] === true ? unassigned(await c.peers()) : [];
      if (ids.length === 0) {
        const why = args['all-unassigned'] === true ? ': no unassigned peers' : '';
        output(
          args.json,
          { group: name, created: true, member: true, peers: [], applied: 0 },
          () => `group ${name} created${why}`,
        );
        return EXIT_OK;
      }
      const peers = await c.changeMembers(name, ids, true, { timeoutMs: ms });
      return report(args.json, name, true, peers, { created: true }, [`group ${name} created`]);
    });
  },
});
