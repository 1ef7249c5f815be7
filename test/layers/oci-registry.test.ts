// Image references through skopeo against a real registry: Debian's docker-registry
// (distribution 2.8) on 127.0.0.1 of a port the test picks, an image made by umoci pushed with
// `skopeo copy`, then imported by tag, by digest pin and from an oci: layout. The layer's
// signed manifest records the reference and the manifest digest (provenance); a wrong pin,
// an unknown tag and a registry that is not there are refused with codes that say why.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importOci, readLayer } from '../../layers/index.ts';
import { cli, freePort, tempDir } from '../helpers.ts';
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
    const { existsSync } = await import('node:fs');
    t.false(existsSync(out), ref);
  }
});
