// `importOci`: an OCI image layout tarball or a `docker save` archive becomes a signed
// layer. The outer archive's files are stored under counter names (never archive paths),
// blobs are checked against their digests, image layers are applied in order (oci-apply.ts)
// and the image config is mapped to a service; whatever has no equivalent is reported.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import semver from 'semver';
import { openRegularFile, type Progress, writeFailure } from '../common/index.ts';
import type { Certificate, SigningKey } from '../keys/index.ts';
import { LayerError } from './layer-error.ts';
import { LAYER_FORMAT, type SourceManifest, validateManifest } from './manifest.ts';
import { SIGNALS, type WritableRoot } from './service.ts';
import { type Dropped, applyLayer } from './oci-apply.ts';
import { forEachEntry, memberPath } from './oci-tar.ts';
import { type PackResult, packLayer } from './pack.ts';
import {
  type Accounts,
  imageAccounts,
  PODMAN_DEFAULT_CAPABILITIES,
  resolveImageUser,
} from './oci-runtime.ts';
import { fetchImage, type ImageSource, isImageReference } from './oci-source.ts';

const MAX_JSON = 4 * 1024 * 1024;
const MAX_LAYERS = 256;

export interface ImportOciOptions {
  /** An archive path, or an image reference skopeo fetches (`docker://…`, `oci:…`, `oci-archive:…`, `docker-archive:…`). */
  archive: string;
  /** For `docker://` references: verify the registry's TLS certificate (default true). */
  tlsVerify?: boolean;
  key: SigningKey;
  chain: readonly Certificate[];
  out: string;
  name?: string;
  version?: string;
  /** Which image in a multi-image archive: OCI ref.name annotation or Docker RepoTag. */
  ref?: string;
  /**
   * The layer's architecture: a multi-arch index gives the image built for it, and an image
   * built for another is refused (E_OCI_ARCH). Default: the index's image for this machine,
   * and a single image as it is built.
   */
  architecture?: LayerArchitecture;
  /** The service's writable root: `ephemeral` (the default, as `podman run --rm`) or `persistent` (kept, as a container's rootfs across `podman restart`). */
  writableRoot?: WritableRoot;
  override?: ImageOverride;
  sourceDateEpoch?: number;
  progress?: Progress;
}

/**
 * What is set over the image, as `docker compose up` sets a service over its image
 * (compose-import.ts): config fields that replace the image's (`Env` entries come after the
 * image's, so they win), more volume paths, the service's manifest fields beyond the image's
 * (applied to the mapped service), and the layer groups the layer joins.
 */
/** The OCI config fields an override may set (compose's entrypoint, command, environment…). */
export interface OciConfigOverride {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  StopSignal?: string;
}

export interface ImageOverride {
  config?: OciConfigOverride;
  volumes?: string[];
  service?: (mapped: Record<string, unknown>) => Record<string, unknown>;
  groups?: string[];
  /** Data groups the layer asks for (`data.groups`): a compose project's, for its shared volumes. */
  dataGroups?: string[];
}

export interface ImportOciResult extends PackResult {
  format: 'oci' | 'docker';
  imageLayers: number;
  /** Entries left out of the payload (device nodes, FIFOs, setuid bits). */
  dropped: Dropped[];
  /** Image settings with no layer equivalent. */
  unmapped: string[];
}

/** The outer archive unpacked to numbered files; names map to them. */
interface Outer {
  files: Map<string, string>;
}

async function unpackOuter(archive: string, work: string): Promise<Outer> {
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  let n = 0;
  await forEachEntry(archive, archive, async (e) => {
    const h = e.header;
    const rel = memberPath(h.name, archive);
    if (h.type === 'directory' || rel === '') return;
    if (h.type === 'symlink') {
      // docker save (legacy) links <id>/layer.tar -> ../<digest>.tar
      const target = posix.normalize(posix.join(posix.dirname(rel), h.linkname ?? ''));
      if ((h.linkname ?? '').startsWith('/') || target.startsWith('..')) {
        throw new LayerError('E_OCI_LINK_ESCAPE', `${archive}: ${rel} -> ${h.linkname} leaves the archive`, {
          details: { member: rel },
        });
      }
      links.set(rel, target);
      return;
    }
    if (h.type !== 'file' && h.type !== 'contiguous-file') {
      throw new LayerError('E_OCI_ARCHIVE', `${archive}: unexpected ${h.type} ${rel} in an image archive`, {
        details: { member: rel },
      });
    }
    if (files.has(rel))
      throw new LayerError('E_OCI_ARCHIVE', `${archive}: ${rel} appears twice`, { details: { member: rel } });
    const dest = join(work, `f${n++}`);
    await pipeline(e, createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    files.set(rel, dest);
  });
  for (const [from, to] of links) {
    const f = files.get(to);
    if (f === undefined) throw new LayerError('E_OCI_ARCHIVE', `${archive}: ${from} links to missing ${to}`);
    files.set(from, f);
  }
  return { files };
}

/**
 * The OCI layout directory skopeo wrote (fetchImage) as an Outer, read in place: its
 * `oci-layout`, `index.json` and `blobs/sha256/*`, regular files only (blob() still checks
 * every blob against its digest).
 */
async function layoutOuter(layout: string): Promise<Outer> {
  const files = new Map<string, string>();
  const add = async (rel: string) => {
    const p = join(layout, rel);
    const st = await lstat(p);
    if (!st.isFile())
      throw new LayerError('E_OCI_ARCHIVE', `${layout}: ${rel} is not a regular file`, {
        details: { member: rel },
      });
    files.set(rel, p);
  };
  for (const name of ['oci-layout', 'index.json']) await add(name);
  for (const hex of await readdir(join(layout, 'blobs', 'sha256'))) await add(`blobs/sha256/${hex}`);
  return { files };
}

async function jsonFile(outer: Outer, name: string, what: string): Promise<Record<string, unknown>> {
  const p = outer.files.get(name);
  if (p === undefined) throw new LayerError('E_OCI_ARCHIVE', `Image archive has no ${name} (${what})`);
  if ((await stat(p)).size > MAX_JSON)
    throw new LayerError('E_OCI_ARCHIVE', `${name} is larger than ${MAX_JSON} bytes`);
  try {
    return JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LayerError('E_OCI_ARCHIVE', `${name} is not JSON: ${(e as Error).message}`, { cause: e });
  }
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function blob(outer: Outer, digest: unknown, what: string): Promise<string> {
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new LayerError('E_OCI_ARCHIVE', `${what} has a bad digest ${JSON.stringify(digest)}`);
  }
  const hex = digest.slice(7);
  const p = outer.files.get(`blobs/sha256/${hex}`);
  if (p === undefined) throw new LayerError('E_OCI_ARCHIVE', `Image archive has no blob ${digest} (${what})`);
  if ((await sha256Of(p)) !== hex)
    throw new LayerError('E_OCI_DIGEST', `Blob ${digest} (${what}) does not match its digest`);
  return p;
}

interface Image {
  format: 'oci' | 'docker';
  config: Record<string, unknown>;
  layers: string[];
  ref: string | undefined;
}

/** The OCI platform architecture of a layer architecture (the image-spec's GOARCH names). */
const OCI_ARCH: Record<LayerArchitecture, string> = { x86_64: 'amd64', aarch64: 'arm64' };
const ARCH: Record<string, LayerArchitecture> = { amd64: 'x86_64', arm64: 'aarch64' };
export type LayerArchitecture = 'x86_64' | 'aarch64';

/** This machine's layer architecture (Node's process.arch). */
export function hostArchitecture(): LayerArchitecture {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

async function ociImage(outer: Outer, ref: string | undefined, arch: LayerArchitecture): Promise<Image> {
  const index = await jsonFile(outer, 'index.json', 'OCI index');
  let manifests = index.manifests;
  let chosenRef: string | undefined;
  for (let depth = 0; depth < 4; depth++) {
    if (!Array.isArray(manifests) || manifests.length === 0)
      throw new LayerError('E_OCI_ARCHIVE', 'OCI index lists no manifests');
    const list = manifests as Record<string, unknown>[];
    const refOf = (m: Record<string, unknown>) =>
      (m.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'];
    let pick = ref === undefined ? undefined : list.find((m) => refOf(m) === ref);
    if (ref !== undefined && pick === undefined && depth === 0)
      throw new LayerError(
        'E_OCI_REF',
        `OCI index has no image ${ref} (have: ${list.map(refOf).join(', ')})`,
      );
    const platform = (m: Record<string, unknown>) => m.platform as Record<string, string> | undefined;
    pick ??= list.find((m) => {
      const p = platform(m);
      return p === undefined || (p.os === 'linux' && p.architecture === OCI_ARCH[arch]);
    });
    if (pick === undefined)
      throw new LayerError(
        'E_OCI_ARCH',
        `OCI index has no linux/${OCI_ARCH[arch]} image for a ${arch} layer (have: ${list
          .map((m) => `${platform(m)?.os}/${platform(m)?.architecture}`)
          .join(', ')})`,
        { details: { architecture: arch } },
      );
    if (ref === undefined && depth === 0 && list.length > 1) {
      // Several tagged images and no --ref: ambiguous.
      const tagged = list.filter((m) => refOf(m) !== undefined);
      if (tagged.length > 1)
        throw new LayerError(
          'E_OCI_REF',
          `OCI index holds ${tagged.length} images; choose one with --ref (${tagged.map(refOf).join(', ')})`,
        );
    }
    chosenRef ??= refOf(pick);
    const body = JSON.parse(await readFile(await blob(outer, pick.digest, 'manifest'), 'utf8')) as Record<
      string,
      unknown
    >;
    if (Array.isArray(body.manifests)) {
      manifests = body.manifests;
      continue;
    }
    const cfg = body.config as Record<string, unknown> | undefined;
    const config = JSON.parse(await readFile(await blob(outer, cfg?.digest, 'config'), 'utf8')) as Record<
      string,
      unknown
    >;
    if (!Array.isArray(body.layers))
      throw new LayerError('E_OCI_ARCHIVE', 'OCI manifest has no layers array');
    const layers: string[] = [];
    for (const [i, l] of (body.layers as Record<string, unknown>[]).entries())
      layers.push(await blob(outer, l.digest, `layer ${i + 1}`));
    return { format: 'oci', config, layers, ref: chosenRef };
  }
  throw new LayerError('E_OCI_ARCHIVE', 'OCI index nests too deeply');
}

async function dockerImage(outer: Outer, ref: string | undefined): Promise<Image> {
  const p = outer.files.get('manifest.json') as string;
  const list = JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>[];
  if (!Array.isArray(list) || list.length === 0)
    throw new LayerError('E_OCI_ARCHIVE', 'docker manifest.json lists no image');
  const tags = (m: Record<string, unknown>) => (Array.isArray(m.RepoTags) ? (m.RepoTags as string[]) : []);
  let m = list[0] as Record<string, unknown>;
  if (ref !== undefined) {
    const f = list.find((x) => tags(x).some((t) => t === ref || t.endsWith(`/${ref}`)));
    if (f === undefined) throw new LayerError('E_OCI_REF', `docker archive has no image ${ref}`);
    m = f;
  } else if (list.length > 1)
    throw new LayerError('E_OCI_REF', `docker archive holds ${list.length} images; choose one with --ref`);
  const configName = memberPath(String(m.Config), 'manifest.json');
  const config = await jsonFile(outer, configName, 'image config');
  const diffIds = ((config.rootfs as Record<string, unknown> | undefined)?.diff_ids ?? []) as string[];
  if (!Array.isArray(m.Layers)) throw new LayerError('E_OCI_ARCHIVE', 'docker manifest has no Layers');
  const layers: string[] = [];
  for (const [i, l] of (m.Layers as string[]).entries()) {
    const f = outer.files.get(memberPath(String(l), 'manifest.json'));
    if (f === undefined) throw new LayerError('E_OCI_ARCHIVE', `docker archive has no layer ${l}`);
    // diff_ids are digests of the uncompressed layer tars, which is what docker save stores.
    const want = diffIds[i];
    if (typeof want === 'string' && want.startsWith('sha256:') && (await sha256Of(f)) !== want.slice(7)) {
      throw new LayerError('E_OCI_DIGEST', `docker layer ${l} does not match diff_id ${want}`);
    }
    layers.push(f);
  }
  return { format: 'docker', config, layers, ref: tags(m)[0] };
}

function sanitizeName(s: string): string {
  const n = s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  return n === '' ? 'imported' : n;
}

/** `docker://host:5000/web:1.2@sha256:…` → `host:5000/web:1.2`: what mapConfig takes the name and tag from. */
function referenceName(ref: string): string {
  const bare = ref.replace(/^[a-z-]+:(\/\/)?/, '').replace(/@sha256:[0-9a-f]{64}$/, '');
  // oci:DIR:tag and *-archive:FILE:tag: the part after the path; a registry's host:port/repo:tag whole.
  return ref.startsWith('docker://') ? bare : bare.split(':').slice(1).join(':') || bare;
}

/** The image's config with `override` set over it. */
function overridden(
  c: Record<string, unknown>,
  override: ImageOverride | undefined,
): Record<string, unknown> {
  if (override === undefined) return c;
  const { Env, ...replaced } = override.config ?? {};
  const out: Record<string, unknown> = { ...c, ...replaced };
  if (Env !== undefined) out.Env = [...(Array.isArray(c.Env) ? c.Env : []), ...Env];
  if (override.volumes !== undefined && override.volumes.length > 0)
    out.Volumes = {
      ...((c.Volumes ?? {}) as Record<string, unknown>),
      ...Object.fromEntries(override.volumes.map((p) => [p, {}])),
    };
  return out;
}

/** Maps the image config to a source manifest; returns what could not be mapped. */
export function mapConfig(
  image: Image,
  o: {
    name?: string;
    version?: string;
    source?: ImageSource;
    writableRoot?: WritableRoot;
    override?: ImageOverride;
  },
  accounts: { passwd: Accounts; group: Accounts } = {
    passwd: { byName: new Map(), byId: new Map() },
    group: { byName: new Map(), byId: new Map() },
  },
): { manifest: SourceManifest; unmapped: string[] } {
  const unmapped: string[] = [];
  const c = overridden((image.config.config ?? {}) as Record<string, unknown>, o.override);
  const strs = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const refName = image.ref?.split('/').pop() ?? '';
  const [repo, tag] = refName.includes(':')
    ? [refName.slice(0, refName.lastIndexOf(':')), refName.slice(refName.lastIndexOf(':') + 1)]
    : [refName, ''];
  const name = o.name ?? sanitizeName(repo === '' || /^\d/.test(repo) ? 'imported' : repo);
  let version = o.version;
  if (version === undefined) {
    const candidate =
      semver.valid(tag) ?? semver.valid(refName) ?? semver.valid(semver.coerce(tag)?.version ?? '');
    version = candidate ?? '0.0.0';
    if (candidate === null)
      unmapped.push(
        `tag ${JSON.stringify(tag || refName)} is not a semantic version; version set to 0.0.0 (use --version)`,
      );
  }
  const argv = [...strs(c.Entrypoint), ...strs(c.Cmd)];
  const env: Record<string, string> = {};
  for (const kv of strs(c.Env)) {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) env[k] = i < 0 ? '' : kv.slice(i + 1);
    else unmapped.push(`Env ${JSON.stringify(kv)}: not a valid variable name`);
  }
  const who = resolveImageUser(typeof c.User === 'string' ? c.User : '', accounts);
  unmapped.push(...who.notes);
  const ports = Object.keys((c.ExposedPorts ?? {}) as Record<string, unknown>).sort();
  const tcp = ports
    .map((p) => /^(\d+)(\/tcp)?$/.exec(p))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]));
  for (const p of ports)
    if (!/^(\d+)(\/tcp)?$/.test(p)) unmapped.push(`ExposedPorts ${p}: only TCP ports map to readiness`);
  if (tcp.length > 1)
    unmapped.push(
      `ExposedPorts ${tcp.slice(1).join(', ')}: only the first TCP port is the readiness probe; all listen on the host network`,
    );
  // The image's StopSignal is what systemd calls KillSignal=.
  let killSignal: (typeof SIGNALS)[number] = 'SIGTERM';
  if (typeof c.StopSignal === 'string') {
    const s = c.StopSignal.startsWith('SIG') ? c.StopSignal : `SIG${c.StopSignal}`;
    const known = SIGNALS.find((x) => x === s);
    if (known !== undefined) killSignal = known;
    else unmapped.push(`StopSignal ${c.StopSignal}`);
  }
  for (const k of Object.keys(c).sort()) {
    if (
      ['Entrypoint', 'Cmd', 'Env', 'WorkingDir', 'User', 'ExposedPorts', 'StopSignal', 'Volumes'].includes(k)
    )
      continue;
    const v = c[k];
    if (
      v === null ||
      v === undefined ||
      (typeof v === 'object' && Object.keys(v).length === 0) ||
      v === '' ||
      v === false
    )
      continue;
    if (k === 'ArgsEscaped') continue;
    unmapped.push(`${k} ${JSON.stringify(v)}`);
  }
  const services: Record<string, unknown>[] = [];
  if (argv.length === 0) unmapped.push('no Entrypoint or Cmd: the layer has no service');
  else {
    const wd = typeof c.WorkingDir === 'string' && c.WorkingDir.startsWith('/') ? c.WorkingDir : '/';
    // Only what the image says; every other field gets the manifest's defaults.
    services.push({
      name: sanitizeName(name),
      execStart: argv,
      environment: env,
      workingDirectory: wd,
      user: who.user,
      group: who.group,
      // As podman run: the image's root keeps Podman's default capabilities, other users
      // none; the root is writable, fresh at each start unless the importer asks to keep it.
      capabilityBoundingSet: who.root ? [...PODMAN_DEFAULT_CAPABILITIES] : [],
      writableRoot: o.writableRoot ?? 'ephemeral',
      // Volumes: the layer's private data at those paths, seeded from the image (agent/layers/volumes.ts).
      volumes: Object.keys((c.Volumes ?? {}) as Record<string, unknown>)
        .map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p))
        .sort(),
      ...(tcp[0] === undefined ? {} : { readiness: { type: 'tcp', port: tcp[0] } }),
      killSignal,
    });
  }
  const arch = ARCH[String(image.config.architecture)];
  if (arch === undefined) unmapped.push(`architecture ${String(image.config.architecture)}: recorded as any`);
  // Validated as a packager's layer.json would be: an image value the manifest cannot hold
  // (a NUL in Env, a 300-word Cmd) is refused naming its key path, before anything is built.
  const manifest = validateManifest(
    {
      format: LAYER_FORMAT,
      name,
      version,
      kind: 'app',
      architecture: arch ?? 'any',
      description: `imported from ${image.format} image ${o.source?.ref ?? image.ref ?? ''}`.trim(),
      services: services.map((svc) => o.override?.service?.(svc) ?? svc),
      ...(o.override?.groups === undefined ? {} : { groups: o.override.groups }),
      ...(o.override?.dataGroups === undefined || o.override.dataGroups.length === 0
        ? {}
        : { data: { groups: o.override.dataGroups } }),
      ...(o.source === undefined ? {} : { source: o.source }),
    },
    { source: true },
  );
  return { manifest, unmapped };
}

export async function importOci(o: ImportOciOptions): Promise<ImportOciResult> {
  // As pack: an output whose directory is missing or a file is E_LAYER_WRITE, not a raw errno.
  const work = await mkdtemp(join(dirname(o.out), `.${basename(o.out)}.oci-`)).catch((e: unknown) => {
    throw new LayerError('E_LAYER_WRITE', `Cannot write ${o.out}: ${writeFailure(e)}`, {
      path: o.out,
      cause: e,
    });
  });
  try {
    let source: ImageSource | undefined;
    let outer: Outer;
    const outerDir = join(work, 'outer');
    if (isImageReference(o.archive)) {
      o.progress?.step(`fetching ${o.archive} (skopeo)`);
      const fetched = await fetchImage(o.archive, work, {
        ...(o.tlsVerify === undefined ? {} : { tlsVerify: o.tlsVerify }),
        architecture: o.architecture ?? hostArchitecture(),
      });
      source = fetched.source;
      o.progress?.step('reading image layout');
      outer = await layoutOuter(fetched.layout);
    } else {
      o.progress?.step('reading image archive');
      await mkdir(outerDir);
      // By type before any read: a FIFO named as the archive would block the import.
      await (
        await openRegularFile(o.archive, {
          what: 'image archive',
          readCode: 'E_OCI_ARCHIVE',
          error: (code, message, options) => new LayerError(code, message, options),
        })
      ).fh.close();
      outer = await unpackOuter(o.archive, outerDir);
    }
    let image: Image;
    if (outer.files.has('oci-layout') && outer.files.has('index.json'))
      image = await ociImage(outer, o.ref, o.architecture ?? hostArchitecture());
    else if (outer.files.has('manifest.json')) image = await dockerImage(outer, o.ref);
    else
      throw new LayerError(
        'E_OCI_FORMAT',
        `${o.archive} is neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)`,
      );
    const built = String(image.config.architecture);
    if (o.architecture !== undefined && ARCH[built] !== o.architecture)
      throw new LayerError(
        'E_OCI_ARCH',
        `The image is built for ${built}, not for the ${o.architecture} layer --arch asks for (${OCI_ARCH[o.architecture]})`,
        { details: { architecture: o.architecture, image: built } },
      );
    if (source !== undefined && image.ref === undefined) image.ref = referenceName(source.ref);
    if (image.layers.length > MAX_LAYERS)
      throw new LayerError('E_OCI_ARCHIVE', `image has ${image.layers.length} layers, at most ${MAX_LAYERS}`);
    const src = join(work, 'src');
    const rootfs = join(src, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    const dropped: Dropped[] = [];
    for (const [i, l] of image.layers.entries()) {
      o.progress?.step(`applying image layer ${i + 1}/${image.layers.length}`);
      await applyLayer(rootfs, l, i, dropped);
    }
    // The image's blobs are in the payload now: free their space before erofs is built.
    for (const d of [outerDir, join(work, 'image')]) await rm(d, { recursive: true, force: true });
    const { manifest, unmapped } = mapConfig(
      image,
      {
        ...(o.name === undefined ? {} : { name: o.name }),
        ...(o.version === undefined ? {} : { version: o.version }),
        ...(source === undefined ? {} : { source }),
        ...(o.writableRoot === undefined ? {} : { writableRoot: o.writableRoot }),
        ...(o.override === undefined ? {} : { override: o.override }),
      },
      await imageAccounts(rootfs),
    );
    const packed = await packLayer({
      dir: src,
      manifest: JSON.parse(JSON.stringify(manifest)),
      key: o.key,
      chain: o.chain,
      out: o.out,
      ...(o.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: o.sourceDateEpoch }),
      ...(o.progress === undefined ? {} : { progress: o.progress }),
    });
    return { ...packed, format: image.format, imageLayers: image.layers.length, dropped, unmapped };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
