// Signed test layers built with layers/ packLayer from a manifest and a few files, signed
// by the `user` certificate of the test PKI (or by an untrusted one).
import type { ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { newIdentity, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { packLayer } from '../../layers/index.ts';
import { tempDir } from '../helpers.ts';
import type { Pki } from './_namespace.ts';

export interface TestLayer {
  name: string;
  kind: 'app' | 'library';
  version?: string;
  files?: Record<string, string>;
  dependencies?: string[];
  services?: Record<string, unknown>[];
  data?: { private?: boolean; groups?: string[]; common?: boolean };
}

export async function buildTestLayer(
  pki: Pick<Pki, 'userKeyPath' | 'userCertPath'>,
  l: TestLayer,
  out: string,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-agent-layer-'));
  try {
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
    for (const [p, text] of Object.entries(l.files ?? { '.keep': '' })) {
      await mkdir(dirname(join(rootfs, p)), { recursive: true });
      await writeFile(join(rootfs, p), text);
    }
    const manifest = {
      name: l.name,
      version: l.version ?? '1.0.0',
      kind: l.kind,
      dependencies: (l.dependencies ?? []).map((name) => ({ name, range: '*' })),
      data: { private: true, common: false, groups: [], ...l.data },
      services: (l.services ?? []).map((s) => ({ user: 'nobody', privateNetwork: true, ...s })),
    };
    await writeFile(join(dir, 'layer.json'), JSON.stringify(manifest));
    await packLayer({
      dir,
      key: await readPrivateKey(pki.userKeyPath),
      chain: await readCertificates(pki.userCertPath),
      out,
      sourceDateEpoch: 1_700_000_000,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A user certificate under a root the agent does not trust. */
export async function untrustedSigner(
  t: ExecutionContext,
): Promise<Pick<Pki, 'userKeyPath' | 'userCertPath'>> {
  const dir = await tempDir(t, 'mway-agent-evil-');
  const root = await newIdentity({ role: 'user-root', name: 'evil-root', outDir: dir });
  const user = await newIdentity({
    role: 'user',
    name: 'evil',
    outDir: dir,
    issuerKey: await readPrivateKey(root.keyPath),
    issuerCert: root.certificate,
  });
  return { userKeyPath: user.keyPath, userCertPath: user.certPath };
}
