// What the agent uses from layers/ (doc/internal-apis.md, layers section), loaded lazily.
// TODO(layers): replace these local shapes with `import type` from layers/index.ts once it lands.
import type { Certificate, Crl } from '../keys/index.ts';
import { AgentError } from './agent-error.ts';

/** The fields of layers/manifest.ts `ServiceSpec` the agent reads. */
export interface ManifestService {
  name: string;
  argv: string[];
  env: Record<string, string>;
  workingDirectory: string;
  user: string;
  group: string;
  restart: {
    policy: 'no' | 'on-failure' | 'always';
    backoffMs: number;
    maxBackoffMs: number;
    burst: number;
    intervalMs: number;
  };
  readiness:
    | { type: 'none' }
    | { type: 'notify' }
    | { type: 'tcp'; port: number; host: string }
    | { type: 'exec'; argv: string[]; intervalMs: number };
  startTimeoutMs: number;
  after: string[];
  stopSignal: string;
  stopTimeoutMs: number;
  capabilities: string[];
  limits: { memoryBytes?: number; pids?: number; cpuWeight?: number };
  network: 'host' | 'none';
}

/** The fields of layers/manifest.ts `LayerManifest` the agent reads. */
export interface Manifest {
  name: string;
  version: string;
  kind: 'app' | 'library' | 'module';
  payload: { size: number; verity: { rootHash: string } };
  dependencies: { name: string; range: string }[];
  data: { private: boolean; groups: string[]; common: boolean };
  services: ManifestService[];
}

export interface Verified {
  manifest: Manifest;
  signers: Certificate[];
  payloadOffset: number;
  payloadSize: number;
  verityOffset: number;
  veritySize: number;
  path: string;
}

export interface LayersModule {
  verifyLayer(
    path: string,
    options: { anchors: Certificate[]; crls?: Crl[]; verity?: boolean },
  ): Promise<Verified>;
  resolve(
    installed: Manifest[],
    app: string,
  ): { closure: string[]; overlayOrder: string[]; serviceOrder: string[] };
}

export async function loadLayersModule(): Promise<LayersModule> {
  const specifier = '../layers/index.ts';
  try {
    return (await import(specifier)) as LayersModule;
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
