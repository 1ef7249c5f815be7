// `mway reboot --group G` and `mway poweroff --group G`: each peer answers, then goes down.
import { defineCommand } from 'citty';
import { runJob, targetArgs } from './shared.ts';

export const reboot = defineCommand({
  args: { ...targetArgs },
  run: ({ args }) => runJob(args, 'reboot', {}),
});

export const poweroff = defineCommand({
  args: { ...targetArgs },
  run: ({ args }) => runJob(args, 'poweroff', {}),
});
