// What the agent uses from layers/ (doc/internal-apis.md, layers section), loaded lazily.
// TODO(layers): replace these local shapes with `import type` from layers/index.ts once it lands.
import type { Certificate, Crl } from '../keys/index.ts';
import { AgentError } from './agent-error.ts';

export interface ManifestService {
  name: string;
  exec?: string[];
  command?: string[];
  [key: string]: unknown;
}

export interface Manifest {
  name: string;
  version: string;
  kind: 'app' | 'library' | 'module';
  services?: ManifestService[];
  dependencies?: (string | { name: string })[];
  [key: string]: unknown;
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
  const candidates = [
    (m.payload as { verity?: { rootHash?: unknown } } | undefined)?.verity?.rootHash,
    (m.payload as { rootHash?: unknown } | undefined)?.rootHash,
    (m.verity as { rootHash?: unknown } | undefined)?.rootHash,
    m.rootHash,
  ];
  for (const c of candidates) if (typeof c === 'string' && /^[0-9a-f]{64}$/.test(c)) return c;
  throw new AgentError('E_LAYER_MANIFEST', `Layer ${m.name} has no verity root hash in its manifest`);
}
