// `mway group create|add|remove|list|delete`: groups live on the broker, but a peer is in a
// group only through a membership this operator signs and the peer itself keeps.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import { usageError } from '../operator-error.ts';
import { withClient } from './shared.ts';

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

const remove = defineCommand({
  meta: { name: 'delete', description: 'Delete an empty group' },
  args: { ...commonArgs, name: { type: 'positional', required: true, description: 'Group name' } },
  run: ({ args }) =>
    withClient(async (c) => {
      await c.deleteGroup(args.name);
      output(args.json, { group: args.name, deleted: true }, () => `group ${args.name} deleted`);
      return 0;
    }),
});

function members(change: boolean) {
  return defineCommand({
    meta: {
      name: change ? 'add' : 'remove',
      description: change
        ? 'Add peers to a group (signed memberships)'
        : 'Remove peers from a group (signed removals)',
    },
    args: {
      ...commonArgs,
      name: { type: 'positional', required: true, description: 'Group name' },
      label: { type: 'string', description: 'Select peers by label K=V' },
      'all-unassigned': { type: 'boolean', description: 'Every peer that is in no group yet' },
    },
    run: ({ args }) =>
      withClient(async (c) => {
        const named = (args._ ?? []).slice(1).map(String);
        const fleet = await c.peers();
        let ids = named;
        if (args.label !== undefined) {
          const [k, v] = args.label.split('=');
          ids = ids.concat(fleet.filter((p) => k !== undefined && p.labels?.[k] === v).map((p) => p.peerId));
        }
        if (args['all-unassigned'] === true)
          ids = ids.concat(fleet.filter((p) => (p.groups ?? []).length === 0).map((p) => p.peerId));
        ids = [...new Set(ids)];
        if (ids.length === 0) throw usageError('Name at least one peer, or use --label / --all-unassigned');
        for (const id of ids) await c.setMember(args.name, id, change);
        output(args.json, { group: args.name, peers: ids, member: change }, () =>
          ids
            .map((id) => `${change ? 'added' : 'removed'} ${id} ${change ? 'to' : 'from'} ${args.name}`)
            .join('\n'),
        );
        return 0;
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

export default defineCommand({
  meta: { name: 'group', description: 'Manage groups and signed memberships' },
  subCommands: { create, add: members(true), remove: members(false), list, delete: remove },
});
