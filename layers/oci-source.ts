// Image references as skopeo(1) and podman take them (containers-transports(5)):
// `docker://host/repo:tag` or `…@sha256:…` from a registry, `oci:DIR[:ref]`,
// `oci-archive:FILE[:ref]`, `docker-archive:FILE[:ref]`. skopeo fetches the image for the
// layer's architecture (a multi-arch index picks it) into an OCI layout directory that
// importOci reads in place (no archive written and unpacked again: bench import);
// the source and the digest of its manifest are recorded in the signed layer (provenance),
// and a reference pinned by digest must match it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { run } from '../common/index.ts';
import { LayerError } from './layer-error.ts';

export const TRANSPORTS = ['docker://', 'oci:', 'oci-archive:', 'docker-archive:'] as const;

/** Where a layer's payload came from: the reference as given and its manifest's digest. */
export interface ImageSource {
  ref: string;
  digest: string;
}

/** Whether `arg` is a transport reference (else it is a plain archive path). */
export function isImageReference(arg: string): boolean {
  return TRANSPORTS.some((t) => arg.startsWith(t));
}

/** `…@sha256:<64 hex>` of a reference pinned by digest, else undefined. */
export function pinnedDigest(ref: string): string | undefined {
  return /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
}

const OCI_ARCH: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', x64: 'amd64', arm64: 'arm64' };

function tlsArgs(ref: string, flag: string, tlsVerify: boolean): string[] {
  return ref.startsWith('docker://') && !tlsVerify ? [`${flag}=false`] : [];
}

async function skopeo(args: string[], ref: string, binary = false) {
  const r = await run('skopeo', args, { timeout: 1_800_000, reject: false, binary });
  if (r.exitCode !== 0) {
    const why = r.stderr.trim().split('\n').pop() ?? `exit status ${r.exitCode}`;
    throw new LayerError('E_OCI_SOURCE', `Cannot fetch image ${ref}: skopeo ${args[0]}: ${why}`, {
      details: { ref },
    });
  }
  return r;
}

/**
 * Copies `ref` into `<work>/image` (an OCI layout directory) for `architecture` and returns the
 * provenance: the digest of the source's manifest as skopeo reads it (`inspect --raw`).
 */
export async function fetchImage(
  ref: string,
  work: string,
  o: { tlsVerify?: boolean; architecture?: string } = {},
): Promise<{ layout: string; source: ImageSource }> {
  if (!isImageReference(ref))
    throw new LayerError('E_OCI_SOURCE', `${ref} is not an image reference (${TRANSPORTS.join(', ')})`);
  const tls = o.tlsVerify ?? true;
  const arch = OCI_ARCH[o.architecture ?? process.arch] ?? 'amd64';
  const raw = await skopeo(['inspect', '--raw', ...tlsArgs(ref, '--tls-verify', tls), ref], ref, true);
  const digest = `sha256:${createHash('sha256')
    .update(raw.stdoutBytes ?? Buffer.from(raw.stdout))
    .digest('hex')}`;
  const pin = pinnedDigest(ref);
  if (pin !== undefined && pin !== digest)
    throw new LayerError(
      'E_OCI_DIGEST',
      `${ref}: the registry's manifest is ${digest}, not the pinned ${pin}`,
      {
        details: { ref, digest },
      },
    );
  const layout = join(work, 'image');
  await skopeo(
    [
      'copy',
      '--quiet',
      '--override-os',
      'linux',
      '--override-arch',
      arch,
      ...tlsArgs(ref, '--src-tls-verify', tls),
      ref,
      `oci:${layout}`,
    ],
    ref,
  );
  return { layout, source: { ref, digest } };
}
