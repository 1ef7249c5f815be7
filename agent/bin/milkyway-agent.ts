#!/usr/bin/env node
// milkyway-agent: MilkyWayLinux init (PID 1): verifies and activates signed layers and supervises their services
// With no subcommand it runs the agent; subcommands are loaded lazily from agent/cli/ so
// `--help` stays fast. The kernel starts init with no arguments: that runs the agent on
// the default config rather than printing help.
import { defineCommand } from 'citty';
import { main } from '../../common/index.ts';
import { subCommands } from '../cli/index.ts';
import { DEFAULT_CONFIG, runArgs } from '../cli/run-args.ts';

export const command = defineCommand({
  meta: {
    name: 'milkyway-agent',
    version: '0.1.0',
    description:
      'MilkyWayLinux init (PID 1): verifies and activates signed layers and supervises their services',
  },
  args: runArgs,
  subCommands,
  run: async ({ args }) => {
    const { runAgent } = await import('../cli/run.ts');
    return runAgent({
      ...(args.root === undefined ? {} : { root: args.root }),
      ...(args.config === undefined ? {} : { config: args.config }),
      ...(args.mode === undefined ? {} : { mode: args.mode }),
      ...(args['log-format'] === undefined ? {} : { logFormat: args['log-format'] }),
    });
  },
});

if (import.meta.main) {
  if (process.argv.length === 2 && process.pid === 1) process.argv.push('--config', DEFAULT_CONFIG);
  await main(command);
}
