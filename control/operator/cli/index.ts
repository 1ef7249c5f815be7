// Subcommand table: each entry is loaded only when that subcommand runs or shows its help;
// its description is here, so the binary's --help lists it without loading it (lazy()).
import type { SubCommandsDef } from 'citty';
import { completionCommand, lazy } from '../../../common/index.ts';

export const subCommands: SubCommandsDef = {
  keys: lazy('Post-quantum keys, certificates, CRLs and signatures', () =>
    import('../../../keys/cli/index.ts').then((m) => m.default),
  ),
  config: lazy('Operator configuration in ~/.config/mway/', () =>
    import('./config.ts').then((m) => m.default),
  ),
  peers: lazy('List peers; manage enrollment requests', () => import('./peers.ts').then((m) => m.default)),
  group: lazy('Manage groups and signed memberships', () => import('./group.ts').then((m) => m.default)),
  service: lazy('Start, stop, restart, inspect services on a group or peers', () =>
    import('./service.ts').then((m) => m.default),
  ),
  install: lazy('Install a signed layer on a group or peers', () =>
    import('./install.ts').then((m) => m.default),
  ),
  update: lazy(
    'A/B CoreOS update of a group or peers from a signed bundle (`update status`: the slots; --rollback, --cancel)',
    () => import('./update.ts').then((m) => m.default),
  ),
  compose: lazy('Install a compose project on a group or peers in one signed rollout', () =>
    import('./compose.ts').then((m) => m.default),
  ),
  docker: lazy('docker start --compose FILE [--enable]: the seed’s spelling of compose up', () =>
    import('./docker.ts').then((m) => m.default),
  ),
  remove: lazy('Remove a layer from a group or peers', () => import('./remove.ts').then((m) => m.default)),
  secrets: lazy('Push sealed secrets to a layer or secret group', () =>
    import('./secrets.ts').then((m) => m.default),
  ),
  reboot: lazy('Reboot a group or peers (orderly shutdown first)', () =>
    import('./power.ts').then((m) => m.reboot),
  ),
  poweroff: lazy('Power off a group or peers (orderly shutdown first)', () =>
    import('./power.ts').then((m) => m.poweroff),
  ),
  run: lazy('Run a command on a group or peers (needs the exec scope)', () =>
    import('./run.ts').then((m) => m.default),
  ),
  module: lazy('Modules of the fleet: list, info, verbs, run an action', () =>
    import('./module.ts').then((m) => m.default),
  ),
  vpn: lazy('WireGuard VPNs between peers, through the vpn module: create, add, remove, status', () =>
    import('./vpn.ts').then((m) => m.default),
  ),
  status: lazy('Fleet status from signed peer reports (or ask a target now)', () =>
    import('./status.ts').then((m) => m.default),
  ),
  facts: lazy("Each peer's facts from its signed status (hostname, arch, kernel, OS …)", () =>
    import('./facts.ts').then((m) => m.default),
  ),
  crl: lazy('Distribute certificate revocation lists', () => import('./crl.ts').then((m) => m.default)),
  jobs: lazy('List recent jobs', () => import('./jobs.ts').then((m) => m.jobs)),
  job: lazy(
    'Show one job with every peer result verified (`mway job cancel ID` cancels what has not run)',
    () => import('./jobs.ts').then((m) => m.job),
  ),
  audit: lazy("Show (and with --verify check) the broker's audit log", () =>
    import('./audit.ts').then((m) => m.default),
  ),
  completion: completionCommand,
};
