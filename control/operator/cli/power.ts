// `mway reboot --group G` and `mway poweroff --group G`: each peer answers, then goes down.
import { defineCommand } from 'citty';
import { runJob, targetArgs } from './shared.ts';

export const reboot = defineCommand({
  meta: { name: 'reboot', description: 'Reboot a group or peers (orderly shutdown first)' },
  args: { ...targetArgs },
  run: ({ args }) => runJob(args, 'reboot', {}),
});

export const poweroff = defineCommand({
  meta: { name: 'poweroff', description: 'Power off a group or peers (orderly shutdown first)' },
  args: { ...targetArgs },
  run: ({ args }) => runJob(args, 'poweroff', {}),
});
