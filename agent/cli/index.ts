// Subcommand table: each entry is loaded only when that subcommand runs or shows its help;
// its description is here, so the binary's --help lists it without loading it (lazy()). With no
// subcommand the root command runs the agent (agent/cli/run.ts).
import type { SubCommandsDef } from 'citty';
import { completionCommand, lazy } from '../../common/index.ts';

export const subCommands: SubCommandsDef = {
  run: lazy('Run the agent (PID 1, or PID 1 of a namespace with --root)', () =>
    import('./run.ts').then((m) => m.default),
  ),
  ctl: lazy('Control a running agent over its local D-Bus API (org.milkyway.Agent1)', () =>
    import('./ctl.ts').then((m) => m.default),
  ),
  completion: completionCommand,
};
