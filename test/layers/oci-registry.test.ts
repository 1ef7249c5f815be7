// Image references through skopeo against a real registry: Debian's docker-registry
// (distribution 2.8) on 127.0.0.1 of a port the test picks, an image made by umoci pushed with
// `skopeo copy`, then imported by tag, by digest pin and from an oci: layout. The layer's
// signed manifest records the reference and the manifest digest (provenance); a wrong pin,
// an unknown tag and a registry that is not there are refused with codes that say why.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { extractFiles, importOci, readLayer } from '../../layers/index.ts';
import { cli, freePort, jsonOut, tempDir } from '../helpers.ts';
import { pki } from './fixture.ts';

/** docker-registry serving from `dir` on 127.0.0.1:PORT, stopped at teardown. */
async function registry(t: ExecutionContext, dir: string): Promise<string> {
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'store')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  t.teardown(() => {
    proc.kill('SIGTERM');
  });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://${host}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) return host;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not start: ${err}`);
}

async function image(dir: string): Promise<string> {
  const layout = join(dir, 'img');
  const run = (args: string[]) => execa('umoci', args, { cwd: dir, timeout: 60_000 });
  await run(['init', '--layout', layout]);
  await run(['new', '--image', `${layout}:1.4.2`]);
  const l1 = join(dir, 'l1');
  await mkdir(join(l1, 'usr/bin'), { recursive: true });
  await writeFile(join(l1, 'usr/bin/web'), '#!/bin/sh\necho web\n');
  await chmod(join(l1, 'usr/bin/web'), 0o755);
  await run(['insert', '--image', `${layout}:1.4.2`, l1, '/']);
  await run(['config', '--image', `${layout}:1.4.2`, '--config.entrypoint', '/usr/bin/web']);
  return layout;
}

test('import-oci docker://127.0.0.1 by tag and by digest pin records the source and digest in the signed manifest', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const host = await registry(t, dir);
  const layout = await image(dir);
  await execa(
    'skopeo',
    ['copy', '--dest-tls-verify=false', `oci:${layout}:1.4.2`, `docker://${host}/shop/web:1.4.2`],
    { timeout: 120_000 },
  );
  // The digest the registry serves, read by skopeo: the reference a user pins.
  const digest = (
    await execa(
      'skopeo',
      ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${host}/shop/web:1.4.2`],
      {
        timeout: 60_000,
      },
    )
  ).stdout.trim();
  t.regex(digest, /^sha256:[0-9a-f]{64}$/);

  const byTag = await importOci({
    archive: `docker://${host}/shop/web:1.4.2`,
    tlsVerify: false,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'tag.mwl'),
    sourceDateEpoch: 7,
  });
  // Name and version from the reference; provenance in the manifest the signature covers.
  t.is(byTag.manifest.name, 'web');
  t.is(byTag.manifest.version, '1.4.2');
  t.deepEqual((await readLayer(join(dir, 'tag.mwl'))).manifest.source, {
    ref: `docker://${host}/shop/web:1.4.2`,
    digest,
  });

  const pinned = `docker://${host}/shop/web@${digest}`;
  const r = await cli('mway-layer', [
    'import-oci',
    pinned,
    '--no-tls-verify',
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '--version',
    '1.4.2',
    '--source-date-epoch',
    '7',
    '-o',
    join(dir, 'pin.mwl'),
    '--json',
  ]);
  t.is(r.exitCode, 0, r.stderr);
  const pin = await readLayer(join(dir, 'pin.mwl'));
  t.deepEqual(pin.manifest.source, { ref: pinned, digest });
  // The same image by tag, by pin and from its own layout: the same payload.
  const local = await importOci({
    archive: `oci:${layout}:1.4.2`,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'local.mwl'),
    name: 'web',
    version: '1.4.2',
    sourceDateEpoch: 7,
  });
  t.is(pin.manifest.payload.verity.rootHash, byTag.manifest.payload.verity.rootHash);
  t.is(local.manifest.payload.verity.rootHash, byTag.manifest.payload.verity.rootHash);
  t.is(local.manifest.source?.ref, `oci:${layout}:1.4.2`);

  // Refusals that say why: a pin the registry's manifest does not match, an unknown tag,
  // a registry that is not there, TLS to a plain-HTTP registry; nothing is written.
  const wrong = `docker://${host}/shop/web@sha256:${'0'.repeat(64)}`;
  for (const [ref, code, tls] of [
    [wrong, /E_OCI_(DIGEST|SOURCE)/, false],
    [`docker://${host}/shop/web:9.9.9`, /E_OCI_SOURCE/, false],
    [`docker://127.0.0.1:${await freePort()}/web:1.0.0`, /E_OCI_SOURCE/, false],
    [`docker://${host}/shop/web:1.4.2`, /E_OCI_SOURCE/, true],
  ] as const) {
    const out = join(dir, 'bad.mwl');
    const bad = await cli('mway-layer', [
      'import-oci',
      ref,
      ...(tls ? [] : ['--no-tls-verify']),
      '--key',
      p.user.keyPath,
      '--cert',
      p.user.certPath,
      '-o',
      out,
    ]);
    t.not(bad.exitCode, 0, ref);
    t.regex(bad.stderr + bad.stdout, code, ref);
    t.regex(bad.stderr + bad.stdout, /Cannot fetch image|pinned/, ref);
    t.false(existsSync(out), ref);
  }
});

/**
 * A multi-arch image as a registry serves one: two umoci images (amd64 and arm64, each with
 * its own /etc/arch) and an OCI image index over them with their platforms, tagged `multi`
 * in the layout; an index over only the amd64 image tagged `amd64only`.
 */
async function multiArch(dir: string): Promise<string> {
  const layout = join(dir, 'multi');
  const run = (args: string[]) => execa('umoci', args, { cwd: dir, timeout: 60_000 });
  await run(['init', '--layout', layout]);
  for (const arch of ['amd64', 'arm64']) {
    await run(['new', '--image', `${layout}:${arch}`]);
    const l = join(dir, `l-${arch}`);
    await mkdir(join(l, 'etc'), { recursive: true });
    await writeFile(join(l, 'etc/arch'), `${arch}\n`);
    await run(['insert', '--image', `${layout}:${arch}`, l, '/']);
    await run([
      'config',
      '--image',
      `${layout}:${arch}`,
      '--architecture',
      arch,
      '--config.entrypoint',
      '/bin/true',
    ]);
  }
  const indexPath = join(layout, 'index.json');
  const top = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: Array<Record<string, unknown>> };
  const descriptor = (arch: string) => {
    const d = top.manifests.find(
      (m) => (m.annotations as Record<string, string>)['org.opencontainers.image.ref.name'] === arch,
    );
    if (d === undefined) throw new Error(`umoci wrote no ${arch} image`);
    const { annotations: _, ...rest } = d;
    return { ...rest, platform: { architecture: arch, os: 'linux' } };
  };
  const addIndex = async (tag: string, arches: string[]) => {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: arches.map(descriptor),
      }),
    );
    const digest = createHash('sha256').update(body).digest('hex');
    await writeFile(join(layout, 'blobs', 'sha256', digest), body);
    top.manifests.push({
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: `sha256:${digest}`,
      size: body.length,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    });
  };
  await addIndex('multi', ['amd64', 'arm64']);
  await addIndex('amd64only', ['amd64']);
  await writeFile(indexPath, JSON.stringify(top));
  return layout;
}

test('a multi-arch index gives the image of the layer’s architecture: from an oci: layout, an OCI archive and a registry; an architecture it lacks is refused', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const layout = await multiArch(dir);
  // skopeo, not us, reads the hand-made index: one image per platform, as a registry serves.
  const skopeo = (...args: string[]) => execa('skopeo', args, { timeout: 120_000 });
  for (const arch of ['amd64', 'arm64']) {
    const seen = JSON.parse(
      (await skopeo('inspect', '--override-arch', arch, `oci:${layout}:multi`)).stdout,
    ) as { Architecture: string };
    t.is(seen.Architecture, arch);
  }
  const host = await registry(t, dir);
  await skopeo(
    'copy',
    '--all',
    '--dest-tls-verify=false',
    `oci:${layout}:multi`,
    `docker://${host}/tools/arch:1.0.0`,
  );
  const raw = Buffer.from(
    (
      await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/tools/arch:1.0.0`], {
        timeout: 60_000,
        encoding: 'buffer',
      })
    ).stdout,
  );
  t.is(
    (JSON.parse(raw.toString()) as { mediaType: string }).mediaType,
    'application/vnd.oci.image.index.v1+json',
  );
  const indexDigest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  const archive = join(dir, 'multi.tar');
  await execa('tar', ['-C', layout, '-cf', archive, '.'], { timeout: 60_000 });

  const archOf = async (mwl: string) => {
    const x = join(dir, `x-${basename(mwl)}`);
    await extractFiles(mwl, x);
    return (await readFile(join(x, 'etc/arch'), 'utf8')).trim();
  };
  for (const [arch, oci] of [
    ['aarch64', 'arm64'],
    ['x86_64', 'amd64'],
  ] as const) {
    for (const [what, source, extra] of [
      ['registry', `docker://${host}/tools/arch:1.0.0`, { tlsVerify: false }],
      ['layout', `oci:${layout}:multi`, {}],
      ['archive', archive, { ref: 'multi' }],
    ] as const) {
      const out = join(dir, `${what}-${arch}.mwl`);
      const r = await importOci({
        archive: source,
        ...extra,
        architecture: arch,
        key: p.user.key,
        chain: p.user.chain,
        out,
        name: 'arch',
        version: '1.0.0',
      });
      t.is(r.manifest.architecture, arch, `${what} ${arch}`);
      t.is(await archOf(out), oci, `${what} ${arch}`);
      // Provenance is the index the user pinned or tagged, whichever image it gave.
      if (what === 'registry') t.deepEqual(r.manifest.source, { ref: source, digest: indexDigest });
    }
  }
  // Refused, nothing written: an index without the architecture (from the archive: our own
  // reading; from the layout: skopeo's), a single image of another architecture, a bad --arch.
  for (const [source, extra, code] of [
    [archive, { ref: 'amd64only' }, /E_OCI_ARCH/],
    [`oci:${layout}:amd64only`, {}, /E_OCI_(ARCH|SOURCE)/],
    [`oci:${layout}:amd64`, {}, /E_OCI_ARCH/],
  ] as const) {
    const out = join(dir, 'bad.mwl');
    const e = await t.throwsAsync(
      importOci({
        archive: source,
        ...extra,
        architecture: 'aarch64',
        key: p.user.key,
        chain: p.user.chain,
        out,
      }),
    );
    t.regex(`${(e as { code?: string }).code}: ${e?.message}`, code, source);
    t.false(existsSync(out), source);
  }
  const bad = await cli('mway-layer', [
    'import-oci',
    archive,
    '--ref',
    'multi',
    '--arch',
    'riscv64',
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    join(dir, 'bad.mwl'),
  ]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /E_USAGE: --arch: "riscv64" is not x86_64 or aarch64/);
  // A compose service's platform picks the same way (import-compose, as docker compose does).
  await writeFile(
    join(dir, 'compose.yaml'),
    `name: tools\nservices:\n  arch:\n    image: oci:${layout}:multi\n    platform: linux/arm64\n`,
  );
  await mkdir(join(dir, 'composed'));
  const composed = await cli('mway-layer', [
    'import-compose',
    join(dir, 'compose.yaml'),
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    join(dir, 'composed'),
  ]);
  t.is(composed.exitCode, 0, composed.stderr);
  t.is((await readLayer(join(dir, 'composed', 'tools-arch.mwl'))).manifest.architecture, 'aarch64');
  t.is(await archOf(join(dir, 'composed', 'tools-arch.mwl')), 'arm64');
  // Through the CLI: the architecture shown and the arm64 image taken.
  const ok = await cli('mway-layer', [
    'import-oci',
    `oci:${layout}:multi`,
    '--arch',
    'aarch64',
    '--name',
    'arch',
    '--version',
    '1.0.0',
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    join(dir, 'cli.mwl'),
    '--json',
  ]);
  t.is(ok.exitCode, 0, ok.stderr);
  t.is((jsonOut(ok.stdout) as { architecture: string }).architecture, 'aarch64');
  t.is(await archOf(join(dir, 'cli.mwl')), 'arm64');
});
