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

/**
 * `mway VERB …` for a verb no built-in command has: a module's verb (doc/cli.md), run as
 * `mway module verb VERB …`, which checks the word and asks the fleet which module adds it
 * (E_VERB_UNKNOWN when none does). Built-ins always win.
 */
export function moduleVerbArgv(argv: readonly string[]): string[] {
  const first = argv[0];
  if (first === undefined || first.startsWith('-') || first in subCommands) return [...argv];
  return ['module', 'verb', ...argv];
}

if (import.meta.main) {
  process.argv.splice(2, process.argv.length - 2, ...moduleVerbArgv(process.argv.slice(2)));
  await main(command);
}
