// The image's signing keys: a folder with vendor-root.crt, vendor.key/.crt, user-root.crt and
// user.key/.crt. `generate` makes a development PKI there when it is missing (private keys
// stay in the build output, never in the repository); an existing one is reused so rebuilds
// into the same folder keep the same signers.
import { join } from 'node:path';
import {
  type Certificate,
  newIdentity,
  readCertificates,
  readPrivateKey,
  type SigningKey,
} from '../keys/index.ts';
import { ImageError } from './image-error.ts';
import { pathExists } from '../common/index.ts';

export interface ImageKeys {
  dir: string;
  vendorRoot: Certificate;
  userRoot: Certificate;
  vendor: { key: SigningKey; chain: Certificate[] };
  user: { key: SigningKey; chain: Certificate[] };
  generated: boolean;
}

const FILES = ['vendor-root.crt', 'vendor.key', 'vendor.crt', 'user-root.crt', 'user.key', 'user.crt'];

async function firstCert(path: string): Promise<Certificate> {
  const [c] = await readCertificates(path);
  if (c === undefined) throw new ImageError('E_KEYS_MISSING', `No certificate in ${path}`, { path });
  return c;
}

/** Loads the signing keys from `dir`, making a dev PKI first when `generate` and none is there. */
export async function loadImageKeys(dir: string, options: { generate: boolean }): Promise<ImageKeys> {
  let generated = false;
  const present = await Promise.all(FILES.map((f) => pathExists(join(dir, f))));
  if (present.some((p) => !p)) {
    if (present.some((p) => p) || !options.generate) {
      const missing = FILES.filter((_, i) => present[i] !== true);
      throw new ImageError('E_KEYS_MISSING', `Cannot use keys in ${dir}: missing ${missing.join(', ')}`, {
        path: dir,
      });
    }
    for (const [root, leaf] of [
      ['vendor-root', 'vendor'],
      ['user-root', 'user'],
    ] as const) {
      const r = await newIdentity({ role: root, name: root, outDir: dir, days: 3650 });
      await newIdentity({
        role: leaf,
        name: leaf,
        outDir: dir,
        days: 3650,
        issuerKey: await readPrivateKey(r.keyPath),
        issuerCert: r.certificate,
      });
    }
    generated = true;
  }
  return {
    dir,
    vendorRoot: await firstCert(join(dir, 'vendor-root.crt')),
    userRoot: await firstCert(join(dir, 'user-root.crt')),
    vendor: {
      key: await readPrivateKey(join(dir, 'vendor.key')),
      chain: await readCertificates(join(dir, 'vendor.crt')),
    },
    user: {
      key: await readPrivateKey(join(dir, 'user.key')),
      chain: await readCertificates(join(dir, 'user.crt')),
    },
    generated,
  };
}
