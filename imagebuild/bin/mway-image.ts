#!/usr/bin/env node
// mway-image: Build, inspect, verify and boot signed MilkyWayLinux disk images
// Subcommands are loaded lazily from imagebuild/cli/ so `--help` stays fast.
import { defineCommand } from 'citty';
import { main } from '../../common/index.ts';
import { subCommands } from '../cli/index.ts';

export const command = defineCommand({
  meta: {
    name: 'mway-image',
    version: '0.1.0',
    description: 'Build, inspect, verify and boot signed MilkyWayLinux disk images',
  },
  subCommands,
});

if (import.meta.main) await main(command);
