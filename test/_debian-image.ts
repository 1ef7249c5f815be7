// Real container images for tests, built the way an operator's image is: Debian packages
// installed by mmdebstrap into a directory, made an OCI image layout by umoci (one layer and
// a config with Entrypoint, Cmd, ExposedPorts, StopSignal, …), tarred. Cached in
// .cache/oci-images/ keyed by the packages' candidate versions, the config and this file's
// recipe, written atomically, so CI pays for a build once per package update.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../common/exec.ts';

export const IMAGE_CACHE = join(import.meta.dirname, '..', '.cache', 'oci-images');
const RECIPE = 3;

export interface DebianImage {
  /** Debian packages to install beside the essential set. */
  packages: string[];
  /** `umoci config` options without the `--config.` prefix, as [key, value] pairs (repeatable). */
  config: [string, string][];
  /** Files the image's build adds beside the packages (an official image's COPY of its entrypoint). */
  files?: Record<string, { text: string; mode: number }>;
}

async function candidates(packages: readonly string[]): Promise<string> {
  const r = await run('apt-cache', ['policy', ...packages], { timeout: 60_000, reject: false });
  return [...r.stdout.matchAll(/^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)/gm)]
    .map((m) => `${m[1]}=${m[2]}`)
    .join(' ');
}

/** The OCI layout tarball of the image (built once per key). */
export async function debianImage(image: DebianImage): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, ...image, versions: await candidates(image.packages) }))
    .digest('hex')
    .slice(0, 24);
  const out = join(IMAGE_CACHE, `${image.packages.join('+')}-${key}.tar`);
  if (existsSync(out)) return out;
  await mkdir(IMAGE_CACHE, { recursive: true });
  const work = await mkdtemp(join(IMAGE_CACHE, '.build-'));
  try {
    const rootfs = join(work, 'rootfs');
    await run(
      'mmdebstrap',
      [
        '--variant=essential',
        `--include=${image.packages.join(',')}`,
        '--mode=root',
        '--format=directory',
        '--skip=output/dev',
        '--quiet',
        'bookworm',
        rootfs,
      ],
      { timeout: 900_000 },
    );
    for (const [path, f] of Object.entries(image.files ?? {})) {
      const to = join(rootfs, path);
      await mkdir(dirname(to), { recursive: true });
      await writeFile(to, f.text);
      await chmod(to, f.mode);
    }
    const layout = join(work, 'layout');
    const ref = `${layout}:latest`;
    await run('umoci', ['init', '--layout', layout], { timeout: 60_000 });
    await run('umoci', ['new', '--image', ref], { timeout: 60_000 });
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--image', ref, bundle], { timeout: 120_000 });
    await rm(join(bundle, 'rootfs'), { recursive: true, force: true });
    await rename(rootfs, join(bundle, 'rootfs'));
    await run('umoci', ['repack', '--image', ref, bundle], { timeout: 600_000 });
    await run('umoci', ['config', '--image', ref, ...image.config.map(([k, v]) => `--config.${k}=${v}`)], {
      timeout: 60_000,
    });
    const tar = join(work, 'image.tar');
    await run('tar', ['-C', layout, '-cf', tar, '.'], { timeout: 300_000 });
    await rename(tar, out);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
