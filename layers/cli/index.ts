// Subcommand table: each entry is loaded only when that subcommand runs.
import type { SubCommandsDef } from 'citty';

export const subCommands: SubCommandsDef = {
  init: () => import('./init.ts').then((m) => m.default),
  pack: () => import('./pack.ts').then((m) => m.default),
  sign: () => import('./sign.ts').then((m) => m.default),
  verify: () => import('./verify.ts').then((m) => m.default),
  inspect: () => import('./inspect.ts').then((m) => m.default),
  extract: () => import('./extract.ts').then((m) => m.default),
  'import-oci': () => import('./import-oci.ts').then((m) => m.default),
  completion: () => import('../../common/index.ts').then((m) => m.completionCommand),
};
