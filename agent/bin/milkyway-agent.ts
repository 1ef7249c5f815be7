#!/usr/bin/env node
// milkyway-agent: MilkyWayLinux init (PID 1): verifies and activates signed layers and supervises their services
// Subcommands are loaded lazily from agent/cli/ so `--help` stays fast.
import { defineCommand } from 'citty';
import { main } from '../../common/cli.ts';
import { subCommands } from '../cli/index.ts';

export const command = defineCommand({
  meta: {
    name: 'milkyway-agent',
    version: '0.1.0',
    description:
      'MilkyWayLinux init (PID 1): verifies and activates signed layers and supervises their services',
  },
  subCommands,
});

if (import.meta.main) await main(command);
