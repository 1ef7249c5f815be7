// Subcommand table: each entry is loaded only when that subcommand runs or shows its help;
// its description is here, so the binary's --help lists it without loading it (lazy()).
import type { SubCommandsDef } from 'citty';
import { completionCommand, lazy } from '../../common/index.ts';

export const subCommands: SubCommandsDef = {
  verity: lazy('Build and check dm-verity hash trees', () => import('./verity.ts').then((m) => m.default)),
  gpt: lazy('Inspect GPT disks', () => import('./gpt.ts').then((m) => m.default)),
  run: lazy('Boot DISK in QEMU (UEFI, TCG); returns when the guest powers off', () =>
    import('./run.ts').then((m) => m.default),
  ),
  build: lazy('Build a bootable, signed disk image from SPEC (default: examples/default)', () =>
    import('./build.ts').then((m) => m.default),
  ),
  inspect: lazy('Show the partitions, file systems, root hashes and signers of DISK', () =>
    import('./inspect.ts').then((m) => m.default),
  ),
  verify: lazy('Check DISK offline: GPT, every verity tree, every signature, under --trust anchors', () =>
    import('./verify.ts').then((m) => m.default),
  ),
  spec: lazy('Work with image specs (validate)', () => import('./spec.ts').then((m) => m.default)),
  bundle: lazy('Build or check a signed A/B update bundle', () =>
    import('./bundle.ts').then((m) => m.default),
  ),
  completion: completionCommand,
  enroll: lazy(
    'Make a one-time Secure Boot key enrollment disk (and, with --vars, an enrolled OVMF store)',
    () => import('./enroll.ts').then((m) => m.default),
  ),
};
