// `importCompose`: each service of a compose file becomes a signed layer, imported from its
// image with importOci and the compose settings set over it (compose-file.ts), named
// `<project>-<service>` and in the layer group `<project>`; depends_on becomes after and
// requires on the other layers' services; a volume several services mount becomes the
// group's data (groupVolumes). Every layer is written beside the output directory
// first and renamed in only when all are built, so a failure leaves nothing behind.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type Progress, readRegularFile, writeFailure } from '../common/index.ts';
import type { Certificate, SigningKey } from '../keys/index.ts';
import { type ComposeProject, type ComposeService, MAX_COMPOSE_BYTES, parseCompose } from './compose-file.ts';
import { LayerError } from './layer-error.ts';
import { type ImportOciResult, importOci } from './oci-import.ts';
import { isImageReference } from './oci-source.ts';
import { NAME } from './service.ts';

export interface ImportComposeOptions {
  file: string;
  key: SigningKey;
  chain: readonly Certificate[];
  /** Directory the layers are written to (`<project>-<service>.mwl`). */
  outDir: string;
  /** The project's name when the file has no `name` (default: its directory's name). */
  name?: string;
  /** Every layer's version (default: each image's tag when it is semver, else 0.0.0). */
  version?: string;
  tlsVerify?: boolean;
  sourceDateEpoch?: number;
  progress?: Progress;
}

export interface ComposeLayer {
  service: string;
  layer: string;
  path: string;
  result: ImportOciResult;
}

export interface ImportComposeResult {
  project: string;
  layers: ComposeLayer[];
  /** What the file says that a layer holds otherwise or not at all (compose key paths). */
  notes: string[];
}

/** `./pg.tar` beside the compose file, a transport reference as it is, `redis:7` from a registry. */
function imageSource(image: string, composeDir: string): string {
  if (isImageReference(image)) return image;
  if (/^(\.{1,2}\/|\/)/.test(image)) return resolve(composeDir, image);
  return `docker://${image}`;
}

/** The capabilities after compose's cap_drop, then cap_add, over the image's. */
function capabilities(mapped: unknown, s: ComposeService): string[] {
  const base = Array.isArray(mapped) ? (mapped as string[]) : [];
  const kept = s.capDrop.includes('ALL') ? [] : base.filter((c) => !s.capDrop.includes(c));
  return [...new Set([...kept, ...s.capAdd])].sort();
}

function directoryName(file: string): string {
  const n = basename(dirname(resolve(file)))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40);
  return n === '' ? 'compose' : n;
}

/**
 * The compose file read and checked as importCompose reads it (project name: the file's
 * `name`, else `name` given here, else its directory's); what `mway compose up --layers`
 * matches imported layers against.
 */
export async function readComposeProject(file: string, name?: string): Promise<ComposeProject> {
  // By type before any read (a FIFO would hang the import), capped before parsing.
  const bytes = await readRegularFile(file, {
    what: 'compose file',
    readCode: 'E_COMPOSE_YAML',
    maxBytes: MAX_COMPOSE_BYTES,
    tooLargeCode: 'E_COMPOSE_YAML',
    error: (code, message, options) => new LayerError(code, message, options),
  });
  return parseCompose(bytes.toString('utf8'), name ?? directoryName(file));
}

export async function importCompose(o: ImportComposeOptions): Promise<ImportComposeResult> {
  const project = await readComposeProject(o.file, o.name);
  const layerOf = (svc: string) => `${project.name}-${svc}`;
  for (const s of project.services)
    if (!NAME.test(layerOf(s.name)))
      throw new LayerError(
        'E_COMPOSE_INVALID',
        `Cannot import compose file: services.${s.name}: the layer name ${layerOf(s.name)} is longer than 64`,
        { details: { field: `services.${s.name}` } },
      );
  // Checked before any image is read: a missing output directory or a file in its place.
  const work = await mkdtemp(join(o.outDir, '.compose-')).catch((e: unknown) => {
    throw new LayerError('E_LAYER_WRITE', `Cannot write layers to ${o.outDir}: ${writeFailure(e)}`, {
      path: o.outDir,
      cause: e,
    });
  });
  try {
    const built: ComposeLayer[] = [];
    for (const [i, s] of project.services.entries()) {
      o.progress?.step(`service ${s.name} (${i + 1}/${project.services.length}): importing ${s.image}`);
      const layer = layerOf(s.name);
      const qualified = (d: string) => `${layerOf(d)}/${d}`;
      let result: ImportOciResult;
      try {
        result = await importOci({
          archive: imageSource(s.image, dirname(resolve(o.file))),
          key: o.key,
          chain: o.chain,
          out: join(work, `${layer}.mwl`),
          name: layer,
          ...(o.version === undefined ? {} : { version: o.version }),
          ...(o.tlsVerify === undefined ? {} : { tlsVerify: o.tlsVerify }),
          ...(o.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: o.sourceDateEpoch }),
          ...(s.architecture === undefined ? {} : { architecture: s.architecture }),
          override: {
            config: s.config,
            volumes: s.volumes,
            groups: [project.name],
            // Its shared volumes are the project group's data, which it then asks for.
            ...(s.shared.length === 0 ? {} : { dataGroups: [project.name] }),
            service: (mapped) => ({
              ...mapped,
              name: s.name,
              ...s.service,
              // A shared volume is the project's group data; where the image has a Volume at the
              // same path, the shared one takes its place.
              volumes: ((mapped.volumes ?? []) as string[]).filter(
                (p) => !s.shared.some((x) => x.path === p),
              ),
              groupVolumes: s.shared.map((x) => ({ group: project.name, volume: x.volume, path: x.path })),
              after: s.after.map(qualified),
              requires: s.requires.map(qualified),
              capabilityBoundingSet: capabilities(mapped.capabilityBoundingSet, s),
            }),
          },
        });
      } catch (e) {
        if (!(e instanceof LayerError)) throw e;
        throw new LayerError(e.code, `services.${s.name}: ${e.message}`, {
          cause: e,
          details: { ...e.details, service: s.name },
        });
      }
      if (result.manifest.services.length === 0)
        throw new LayerError(
          'E_COMPOSE_INVALID',
          `Cannot import compose file: services.${s.name}: its image has no Entrypoint or Cmd and the service no command`,
          { details: { field: `services.${s.name}.command` } },
        );
      built.push({ service: s.name, layer, path: join(o.outDir, `${layer}.mwl`), result });
    }
    for (const b of built) await rename(join(work, `${b.layer}.mwl`), b.path);
    return {
      project: project.name,
      layers: built.map((b) => ({ ...b, result: { ...b.result, path: b.path } })),
      notes: [...project.notes, ...project.services.flatMap((s) => s.notes)],
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
