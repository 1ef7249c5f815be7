// Subcommand table: each entry is loaded only when that subcommand runs. With no
// subcommand the root command runs the agent (agent/cli/run.ts).
import type { SubCommandsDef } from 'citty';

export const subCommands: SubCommandsDef = {
  run: () => import('./run.ts').then((m) => m.default),
  ctl: () => import('./ctl.ts').then((m) => m.default),
  completion: () => import('../../common/index.ts').then((m) => m.completionCommand),
};
