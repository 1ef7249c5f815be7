// What a peer tells the fleet about an active module (in LayerInfo and so in its signed status):
// its manifest digest, its verb and its actions with their argument schemas, privileges and
// bounds. `mway module list|info` and `mway VERB` read it; the operator checks arguments against
// the schema before signing and may bind the command to the digest (doc/commands.md, "Modules").
import type { ModuleSummary } from '../core/agent-api.ts';
import type { Manifest } from '../layers/layers-contract.ts';
import { manifestDigest } from './module-run.ts';

export function moduleSummary(m: Manifest): ModuleSummary {
  return {
    manifest: manifestDigest(m),
    ...(m.verb === undefined ? {} : { verb: m.verb }),
    // Every field of the manifest's action, argv too: the operator reads each one through the
    // manifest's own action schema (layers readModuleAction), which requires it.
    actions: m.actions.map(({ name, argv, description, args, privileges, output, timeoutSec }) => ({
      name,
      argv,
      description,
      args,
      privileges,
      output,
      timeoutSec,
    })),
  };
}
