// Subcommand table: each entry is loaded only when that subcommand runs.
import type { SubCommandsDef } from 'citty';

export const subCommands: SubCommandsDef = {
  verity: () => import('./verity.ts').then((m) => m.default),
  gpt: () => import('./gpt.ts').then((m) => m.default),
  run: () => import('./run.ts').then((m) => m.default),
  build: () => import('./build.ts').then((m) => m.default),
  inspect: () => import('./inspect.ts').then((m) => m.default),
  verify: () => import('./verify.ts').then((m) => m.default),
  spec: () => import('./spec.ts').then((m) => m.default),
  bundle: () => import('./bundle.ts').then((m) => m.default),
  completion: () => import('../../common/index.ts').then((m) => m.completionCommand),
  enroll: () => import('./enroll.ts').then((m) => m.default),
};
