#!/usr/bin/env node
// milkywaysrvd: MilkyWay broker: relays signed commands and results between operators and peers over TLS 1.3
// Subcommands are loaded lazily from control/broker/cli/ so `--help` stays fast.
import { defineCommand } from 'citty';
import { main } from '../../../common/index.ts';
import { rootArgs, runRoot, subCommands } from '../cli/index.ts';

export const command = defineCommand({
  meta: {
    name: 'milkywaysrvd',
    version: '0.1.0',
    description:
      'MilkyWay broker: relays signed commands and results between operators and peers over TLS 1.3',
  },
  args: rootArgs,
  subCommands,
  run: ({ args }) => runRoot(args),
});

if (import.meta.main) await main(command);
