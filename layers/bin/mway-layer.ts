#!/usr/bin/env node
// mway-layer: Build, sign, verify and inspect signed MilkyWay application layers (.mwl)
// Subcommands are loaded lazily from layers/cli/ so `--help` stays fast.
import { defineCommand } from 'citty';
import { main } from '../../common/index.ts';
import { subCommands } from '../cli/index.ts';

export const command = defineCommand({
  meta: {
    name: 'mway-layer',
    version: '0.1.0',
    description: 'Build, sign, verify and inspect signed MilkyWay application layers (.mwl)',
  },
  subCommands,
});

if (import.meta.main) await main(command);
