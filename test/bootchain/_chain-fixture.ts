// A vendor/user PKI, a pinned stage-1 config and a small signed stage-2 image, shared by the
// bootchain tests (built once per test file; ML-DSA-65 by default like keys/).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeStage1Config,
  type PinnedKey,
  pinVendorKey,
  signStage2,
  type Stage2Input,
} from '../../bootchain/index.ts';
import { type Certificate, newIdentity, readPrivateKey, type SigningKey } from '../../keys/index.ts';

export interface ChainFixture {
  dir: string;
  vendorRoot: Certificate;
  vendor: { key: SigningKey; cert: Certificate };
  other: { key: SigningKey; cert: Certificate };
  userRoot: Certificate;
  user: { key: SigningKey; cert: Certificate };
  pinned: PinnedKey;
  config: Uint8Array;
  input: Stage2Input;
  image: Uint8Array;
}

/** Deterministic filler bytes (a kernel and an initramfs stand-in). */
export function filler(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export const ROOT_HASH = 'ab'.repeat(32);
export const CERTS_HASH = 'cd'.repeat(32);

let made: Promise<ChainFixture> | undefined;
export function chainFixture(): Promise<ChainFixture> {
  made ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mway-chain-'));
    const id = async (role: 'vendor-root' | 'user-root', leafRole: 'vendor' | 'user', name: string) => {
      const r = await newIdentity({ role, name: `${name}-root`, outDir: dir, days: 3650 });
      const l = await newIdentity({
        role: leafRole,
        name,
        outDir: dir,
        days: 3650,
        issuerKey: await readPrivateKey(r.keyPath),
        issuerCert: r.certificate,
      });
      return { root: r.certificate, leaf: { key: await readPrivateKey(l.keyPath), cert: l.certificate } };
    };
    const v = await id('vendor-root', 'vendor', 'vendor');
    const o = await id('vendor-root', 'vendor', 'other-vendor');
    const u = await id('user-root', 'user', 'user');
    const pinned = pinVendorKey(v.leaf.cert, { anchors: [v.root] });
    const config = encodeStage1Config({
      rollbackFloor: 3n,
      certsRootHash: CERTS_HASH,
      userRoot: u.root.fingerprint,
      vendorRoot: v.root.fingerprint,
      sbSigner: 'CN=test db',
      keys: [pinned],
    });
    const input: Stage2Input = {
      kernel: filler(5000, 1),
      initrd: filler(3001, 2),
      cmdline: `console=ttyS0,115200 panic=10 mway.roothash=${ROOT_HASH}`,
      rootHash: ROOT_HASH,
      name: 'milkyway',
      version: '1.0.0',
      rollbackIndex: 3n,
      created: 1_700_000_000n,
    };
    const { image } = signStage2(input, v.leaf);
    return {
      dir,
      vendorRoot: v.root,
      vendor: v.leaf,
      other: o.leaf,
      userRoot: u.root,
      user: u.leaf,
      pinned,
      config,
      input,
      image,
    };
  })();
  return made;
}
