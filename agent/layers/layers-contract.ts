// What the agent uses from layers/ (doc/internal-apis.md, layers section): verifyLayer,
// readLayer and resolve, loaded when the first layer is, so an agent with none never loads them.
import type { LayerManifest, VerifiedLayer } from '../../layers/index.ts';
import { AgentError } from '../core/agent-error.ts';

export type Manifest = LayerManifest;
export type Verified = VerifiedLayer;
export type LayersModule = Pick<
  typeof import('../../layers/index.ts'),
  | 'verifyLayer'
  | 'readLayer'
  | 'resolve'
  | 'compilePolicy'
  | 'policyInputs'
  | 'layerProcessContext'
  | 'layerObjectContext'
  | 'groupType'
  | 'mcsLevel'
  | 'moduleValueSchema'
>;

export async function loadLayersModule(): Promise<LayersModule> {
  try {
    return await import('../../layers/index.ts');
  } catch (e) {
    throw new AgentError('E_LAYERS_UNAVAILABLE', `Cannot load layers/: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** The dm-verity root hash the manifest binds. */
export function rootHashOf(m: Manifest): string {
  const h = m.payload.verity.rootHash;
  if (!/^[0-9a-f]{64}$/.test(h))
    throw new AgentError('E_LAYER_MANIFEST', `Layer ${m.name} has no verity root hash`);
  return h;
}
