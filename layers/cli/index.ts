// Subcommand table: each entry is loaded only when that subcommand runs or shows its help;
// its description is here, so the binary's --help lists it without loading it (lazy()).
import type { SubCommandsDef } from 'citty';
import { completionCommand, lazy } from '../../common/index.ts';

export const subCommands: SubCommandsDef = {
  init: lazy('Create a layer source directory (layer.json template and rootfs/)', () =>
    import('./init.ts').then((m) => m.default),
  ),
  pack: lazy('Build a signed layer from DIR (layer.json, rootfs/, optional policy.cil)', () =>
    import('./pack.ts').then((m) => m.default),
  ),
  sign: lazy('Add a signature to a layer (e.g. a user countersigning a vendor layer)', () =>
    import('./sign.ts').then((m) => m.default),
  ),
  verify: lazy(
    'Verify signatures (chain, role, CRLs), manifest, payload digest and the whole hash tree',
    () => import('./verify.ts').then((m) => m.default),
  ),
  inspect: lazy('Show a layer: manifest, signers (not verified), sizes and payload files', () =>
    import('./inspect.ts').then((m) => m.default),
  ),
  extract: lazy("Extract the payload's files into DIR (checked first; signatures too with --trust)", () =>
    import('./extract.ts').then((m) => m.default),
  ),
  'import-oci': lazy('Turn an OCI image layout tarball or a docker save archive into a signed layer', () =>
    import('./import-oci.ts').then((m) => m.default),
  ),
  'import-compose': lazy('Turn each service of a compose file into a signed layer of one layer group', () =>
    import('./import-compose.ts').then((m) => m.default),
  ),
  completion: completionCommand,
};
