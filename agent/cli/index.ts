// Subcommand table: each entry is loaded only when that subcommand runs.
import type { SubCommandsDef } from 'citty';

export const subCommands: SubCommandsDef = {
  ctl: () => import('./ctl.ts').then((m) => m.default),
};
