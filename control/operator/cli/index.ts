// Subcommand table: each entry is loaded only when that subcommand runs.
import type { SubCommandsDef } from 'citty';

export const subCommands: SubCommandsDef = {
  keys: () => import('../../../keys/cli/index.ts').then((m) => m.default),
  config: () => import('./config.ts').then((m) => m.default),
  peers: () => import('./peers.ts').then((m) => m.default),
  group: () => import('./group.ts').then((m) => m.default),
  service: () => import('./service.ts').then((m) => m.default),
  install: () => import('./install.ts').then((m) => m.default),
  update: () => import('./update.ts').then((m) => m.default),
  remove: () => import('./remove.ts').then((m) => m.default),
  secrets: () => import('./secrets.ts').then((m) => m.default),
  reboot: () => import('./power.ts').then((m) => m.reboot),
  poweroff: () => import('./power.ts').then((m) => m.poweroff),
  run: () => import('./run.ts').then((m) => m.default),
  status: () => import('./status.ts').then((m) => m.default),
  facts: () => import('./facts.ts').then((m) => m.default),
  crl: () => import('./crl.ts').then((m) => m.default),
  jobs: () => import('./jobs.ts').then((m) => m.jobs),
  job: () => import('./jobs.ts').then((m) => m.job),
  audit: () => import('./audit.ts').then((m) => m.default),
  completion: () => import('../../../common/index.ts').then((m) => m.completionCommand),
};
