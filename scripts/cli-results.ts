// Every binary's verb result tables in one list, for `npm run schemas` (doc/cli-result.schema.json)
// and the tests' CLI helper (test/cli-json.ts), which checks each --json output against them.
import type { VerbResults } from '../common/cli-result.ts';
import { agentResults } from '../agent/cli/results.ts';
import { brokerResults } from '../control/broker/cli/results.ts';
import { fleetJob, membership, operatorResults } from '../control/operator/cli/results.ts';
import { imageResults } from '../imagebuild/cli/results.ts';
import { keysResults } from '../keys/cli/results.ts';
import { layerResults } from '../layers/cli/results.ts';

/** Each binary's table, by binary name. */
export const VERB_RESULTS: Readonly<Record<string, VerbResults>> = {
  mway: {
    ...operatorResults,
    ...Object.fromEntries(Object.entries(keysResults).map(([k, s]) => [`mway ${k}`, s])),
  },
  milkywaysrvd: brokerResults,
  'mway-layer': layerResults,
  'mway-image': imageResults,
  'milkyway-agent': agentResults,
};

/** Shapes several verbs share, named once in the published schema. */
export const SHARED_RESULTS = { 'fleet-job': fleetJob, 'group-membership': membership } as const;
