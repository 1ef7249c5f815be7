// One boot's stage 1 for host tests of A/B updates: the real C stage 1 (`mway-stage1 boot
// --no-exec`, bootchain/verifier/) run on a disk image file.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVerifier, encodeStage1Config, pinVendorKey } from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import type { ImageKeys } from '../../imagebuild/dev-keys.ts';
import type { SlotName } from '../../update/index.ts';

/**
 * One boot's stage 1: the real C stage 1 (`mway-stage1 boot --no-exec`, bootchain/verifier/)
 * on the disk the agent wrote — slot bits, a trial's try written down first, the slot's stage 2
 * verified with ML-DSA against the pinned vendor key — and the root hash on the command line it
 * would boot; null when nothing is bootable.
 */
export async function stage1(
  disk: string,
  keys: ImageKeys,
): Promise<{ slot: SlotName; rootHash: string; out: string } | null> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-stage1-'));
  try {
    const vendor = keys.vendor.chain[0];
    if (vendor === undefined) throw new TypeError('no vendor certificate');
    const cfg = join(dir, 'stage1.cfg');
    await writeFile(
      cfg,
      encodeStage1Config({
        rollbackFloor: 1n,
        certsRootHash: 'c'.repeat(64),
        userRoot: keys.userRoot.fingerprint,
        vendorRoot: keys.vendorRoot.fingerprint,
        sbSigner: 'CN=test',
        keys: [pinVendorKey(vendor, { anchors: [keys.vendorRoot] })],
      }),
    );
    const r = await run(await buildVerifier(), ['boot', disk, cfg, '--no-exec', dir], {
      timeout: 60_000,
      reject: false,
    });
    const slot = /mway-stage1: booting stage 2 from slot ([ab])/.exec(r.stdout)?.[1] as SlotName | undefined;
    if (slot === undefined) return null;
    const cmdline = await readFile(join(dir, 'cmdline'), 'utf8');
    const rootHash = /(?:^| )mway\.roothash=([0-9a-f]{64})(?: |$)/.exec(cmdline)?.[1];
    if (rootHash === undefined)
      throw new Error(`stage 1 booted slot ${slot} without a root hash: ${cmdline}`);
    return { slot, rootHash, out: r.stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
