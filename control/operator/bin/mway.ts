#!/usr/bin/env node
// mway: MilkyWay operator CLI: keys, peers, groups and signed commands to fleets
// Subcommands are loaded lazily from control/operator/cli/ so `--help` stays fast.
import { defineCommand } from 'citty';
import { main } from '../../../common/index.ts';
import { subCommands } from '../cli/index.ts';

export const command = defineCommand({
  meta: {
    name: 'mway',
    version: '0.1.0',
    description: 'MilkyWay operator CLI: keys, peers, groups and signed commands to fleets',
  },
  subCommands,
});

if (import.meta.main) await main(command);
