// A small PKI and layer sources for the layers/ tests: vendor and user chains that may sign
// layers, an operator that may not, an expired and a revoked user, and a CRL.
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Certificate,
  type Crl,
  issueCrl,
  newIdentity,
  readCertificates,
  readPrivateKey,
  type SigningKey,
} from '../../keys/index.ts';

export interface Id {
  key: SigningKey;
  chain: Certificate[];
  cert: Certificate;
  keyPath: string;
  certPath: string;
}

export interface Pki {
  dir: string;
  vendorRoot: Id;
  vendor: Id;
  userRoot: Id;
  user: Id;
  operator: Id;
  expired: Id;
  revoked: Id;
  crl: Crl;
  crlPath: string;
}

async function load(r: { keyPath: string; certPath: string }): Promise<Id> {
  const chain = await readCertificates(r.certPath);
  return {
    key: await readPrivateKey(r.keyPath),
    chain,
    cert: chain[0] as Certificate,
    keyPath: r.keyPath,
    certPath: r.certPath,
  };
}

let cached: Promise<Pki> | undefined;

export function pki(): Promise<Pki> {
  cached ??= makePki();
  return cached;
}

async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-layers-pki-'));
  // One PKI per test worker, removed when the worker exits.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const vendorRoot = await load(await newIdentity({ role: 'vendor-root', name: 'vroot', outDir: dir }));
  const vendor = await load(
    await newIdentity({
      role: 'vendor',
      name: 'vendor',
      outDir: dir,
      issuerKey: vendorRoot.key,
      issuerCert: vendorRoot.cert,
    }),
  );
  const userRoot = await load(await newIdentity({ role: 'user-root', name: 'uroot', outDir: dir }));
  const under = { outDir: dir, issuerKey: userRoot.key, issuerCert: userRoot.cert };
  const user = await load(await newIdentity({ ...under, role: 'user', name: 'user' }));
  const operator = await load(
    await newIdentity({ ...under, role: 'operator', name: 'op', groups: ['web'], actions: ['restart'] }),
  );
  const expired = await load(
    await newIdentity({
      ...under,
      role: 'user',
      name: 'expired',
      days: 1,
      notBefore: new Date('2020-01-01T00:00:00Z'),
    }),
  );
  const revoked = await load(await newIdentity({ ...under, role: 'user', name: 'revoked' }));
  const crl = await issueCrl({
    issuerKey: userRoot.key,
    issuerCert: userRoot.cert,
    serials: [revoked.cert.serial],
  });
  const { crlPem } = await import('../../keys/index.ts');
  const crlPath = join(dir, 'uroot.crl');
  await writeFile(crlPath, crlPem(crl));
  return { dir, vendorRoot, vendor, userRoot, user, operator, expired, revoked, crl, crlPath };
}

export const APP_MANIFEST = {
  name: 'hello',
  version: '1.0.0',
  kind: 'app',
  description: 'test app',
  services: [
    { name: 'web', execStart: ['/bin/hello', '--port', '8080'], readiness: { type: 'tcp', port: 8080 } },
  ],
};

/** DIR with layer.json, a small rootfs (files, dir, symlink) and optionally policy.cil. */
export async function layerSource(
  dir: string,
  opts: { policy?: boolean; manifest?: unknown } = {},
): Promise<string> {
  await mkdir(join(dir, 'rootfs/bin'), { recursive: true });
  await mkdir(join(dir, 'rootfs/etc'), { recursive: true });
  await writeFile(join(dir, 'rootfs/bin/hello'), '#!/bin/sh\necho hello\n');
  await chmod(join(dir, 'rootfs/bin/hello'), 0o755);
  await writeFile(join(dir, 'rootfs/etc/hello.conf'), 'port=8080\n'.repeat(2000));
  await symlink('../bin/hello', join(dir, 'rootfs/etc/hello-link'));
  await writeFile(join(dir, 'layer.json'), JSON.stringify(opts.manifest ?? APP_MANIFEST, null, 2));
  if (opts.policy === true) await writeFile(join(dir, 'policy.cil'), '(type hello_t)\n');
  return dir;
}
