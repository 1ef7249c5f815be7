// The stage-2 descriptor and the stage-1 config in TypeScript and in the C verifier: golden
// layout, round trips, known answers (signatures made by keys/ through Node, checked by
// PQClean's C), every byte of an image flipped and refused by both with the same code, and the
// refusals the boot tests rely on (unpinned key, rollback, cmdline).
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BootchainError,
  buildVerifier,
  decodeSignedHeader,
  decodeStage1Config,
  encodeStage1Config,
  encodeStage2Header,
  KERNEL_OFFSET,
  signStage1Config,
  signStage2,
  STAGE1_CONFIG_SIZE,
  verifyStage1Config,
  verifyStage2,
} from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import { tempDir } from '../helpers.ts';
import { CERTS_HASH, chainFixture, ROOT_HASH } from './_chain-fixture.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function cVerify(
  dir: string,
  config: Uint8Array,
  image: Uint8Array,
): Promise<{ code: number; out: string }> {
  const bin = await buildVerifier();
  await writeFile(join(dir, 'cfg'), config);
  await writeFile(join(dir, 'img'), image);
  const r = await run(bin, ['verify', join(dir, 'cfg'), join(dir, 'img')], {
    timeout: 60_000,
    reject: false,
  });
  return { code: r.exitCode, out: r.stdout.trim() };
}

function tsCode(f: () => unknown): string {
  try {
    f();
    return 'ACCEPTED';
  } catch (e) {
    if (!(e instanceof BootchainError)) throw e;
    return e.code;
  }
}

test('encodeStage2Header() matches the golden layout (fixture made by this writer, offsets in doc/stage2-format.md)', async (t) => {
  const h = encodeStage2Header({
    algorithm: 65,
    rollbackIndex: 7n,
    created: 1_700_000_000n,
    keyId: '11'.repeat(32),
    name: 'milkyway',
    version: '1.2.3',
    kernel: { offset: 12288, size: 5000, sha256: '22'.repeat(32) },
    initrd: { offset: 20480, size: 3001, sha256: '33'.repeat(32) },
    rootHash: ROOT_HASH,
    cmdline: `panic=10 mway.roothash=${ROOT_HASH}`,
  });
  t.is(h.length, 4096);
  const golden = (await readFile(join(import.meta.dirname, 'fixtures', 'stage2-header.hex'), 'utf8')).trim();
  t.is(Buffer.from(h.subarray(0, 400)).toString('hex'), golden);
  t.true(h.subarray(400).every((b) => b === 0));
  // Spot checks a reader of the doc can do by hand: magic, algorithm, rollback, kernel offset.
  t.is(Buffer.from(h.subarray(0, 8)).toString('latin1'), 'MWSTAGE2');
  t.is(new DataView(h.buffer).getUint32(12, true), 65);
  t.is(new DataView(h.buffer).getBigUint64(16, true), 7n);
  t.is(new DataView(h.buffer).getBigUint64(128, true), 12288n);
});

test('signStage2() is deterministic and verifyStage2() returns the signed parts', async (t) => {
  const f = await chainFixture();
  const again = signStage2(f.input, f.vendor).image;
  t.is(sha(again), sha(f.image));
  const v = verifyStage2(f.image, { pinned: [f.pinned], rollbackFloor: 3n });
  t.is(v.descriptor.name, 'milkyway');
  t.is(v.descriptor.rollbackIndex, 3n);
  t.is(sha(v.kernel), sha(f.input.kernel));
  t.is(sha(v.initrd), sha(f.input.initrd));
  t.is(v.signer.certFingerprint, f.vendor.cert.fingerprint);
  t.deepEqual(decodeSignedHeader(f.image, f.image.length).kernel.offset, KERNEL_OFFSET);
});

test('C verifier (PQClean ML-DSA-65) accepts the signature keys/ made through Node, and its output names the signer', async (t) => {
  const f = await chainFixture();
  const r = await cVerify(await tempDir(t), f.config, f.image);
  t.is(r.code, 0, r.out);
  t.regex(
    r.out,
    /stage 2 milkyway 1\.0\.0 \(rollback index 3\) verified: ML-DSA-65 signature by pinned vendor key "vendor"/,
  );
});

test('C verifier with ML-DSA-44 and -87 keys (known answers from Node)', async (t) => {
  const { newIdentity, readPrivateKey } = await import('../../keys/index.ts');
  const { encodeStage1Config, pinVendorKey } = await import('../../bootchain/index.ts');
  const f = await chainFixture();
  const dir = await tempDir(t);
  for (const alg of ['ml-dsa-44', 'ml-dsa-87'] as const) {
    const root = await newIdentity({ role: 'vendor-root', name: `r${alg}`, outDir: dir, algorithm: alg });
    const leaf = await newIdentity({
      role: 'vendor',
      name: `v${alg}`,
      outDir: dir,
      algorithm: alg,
      issuerKey: await readPrivateKey(root.keyPath),
      issuerCert: root.certificate,
    });
    const key = { key: await readPrivateKey(leaf.keyPath), cert: leaf.certificate };
    const pinned = pinVendorKey(leaf.certificate, { anchors: [root.certificate] });
    const cfg = encodeStage1Config({
      rollbackFloor: 0n,
      certsRootHash: CERTS_HASH,
      userRoot: f.userRoot.fingerprint,
      vendorRoot: root.certificate.fingerprint,
      sbSigner: '',
      keys: [pinned],
    });
    const { image } = signStage2(f.input, key);
    const r = await cVerify(dir, cfg, image);
    t.is(r.code, 0, `${alg}: ${r.out}`);
    t.regex(r.out, new RegExp(`ML-DSA-${alg.slice(-2)} signature`));
  }
});

test('every byte of a stage-2 image flipped is refused, by TypeScript and by C with the same code', async (t) => {
  t.timeout(600_000);
  const f = await chainFixture();
  const dir = await tempDir(t);
  await writeFile(join(dir, 'cfg'), f.config);
  const used = f.image.subarray(
    0,
    decodeSignedHeader(f.image, f.image.length).initrd.offset + f.input.initrd.length,
  );
  await writeFile(join(dir, 'img'), used);
  const r = await run(await buildVerifier(), ['mutate', join(dir, 'cfg'), join(dir, 'img')], {
    timeout: 600_000,
    maxBuffer: 1 << 26,
  } as never);
  const c = r.stdout.trim().split('\n');
  t.is(c.length, used.length);
  const img = new Uint8Array(used);
  const disagree: string[] = [];
  let accepted = 0;
  for (let i = 0; i < img.length; i++) {
    img[i] = (img[i] as number) ^ 1;
    const ts = tsCode(() => verifyStage2(img, { pinned: [f.pinned], rollbackFloor: 3n }));
    img[i] = (img[i] as number) ^ 1;
    if (ts === 'ACCEPTED' || c[i] === 'ACCEPTED') accepted++;
    if (ts !== c[i] && disagree.length < 10) disagree.push(`byte ${i}: ts ${ts}, c ${c[i]}`);
  }
  t.is(accepted, 0);
  t.deepEqual(disagree, []);
});

test('refusals: unpinned key, rollback below the floor, a cmdline without the root hash or with a stage-1 parameter', async (t) => {
  const f = await chainFixture();
  const dir = await tempDir(t);
  const cases: [string, Uint8Array][] = [
    ['E_DESC_KEY_UNPINNED', signStage2(f.input, f.other).image],
    ['E_DESC_ROLLBACK', signStage2({ ...f.input, rollbackIndex: 2n }, f.vendor).image],
    ['E_DESC_CMDLINE', signStage2({ ...f.input, cmdline: 'panic=10' }, f.vendor).image],
    [
      'E_DESC_CMDLINE',
      signStage2({ ...f.input, cmdline: `${f.input.cmdline} mway.certs=${CERTS_HASH}` }, f.vendor).image,
    ],
  ];
  for (const [code, image] of cases) {
    t.is(
      tsCode(() => verifyStage2(image, { pinned: [f.pinned], rollbackFloor: 3n })),
      code,
    );
    const r = await cVerify(dir, f.config, image);
    t.is(r.code, 1);
    t.true(r.out.startsWith(`${code}:`), r.out);
  }
});

test('stage-1 config: round trip, strict reader, the user signature (type stage1) verifies and a vendor one does not', async (t) => {
  const f = await chainFixture();
  t.is(f.config.length, STAGE1_CONFIG_SIZE);
  const c = decodeStage1Config(f.config);
  t.is(c.rollbackFloor, 3n);
  t.is(c.keys[0]?.keyId, f.pinned.keyId);
  t.deepEqual(encodeStage1Config(c), f.config);
  const bad = new Uint8Array(f.config);
  bad[200] = 1;
  t.throws(() => decodeStage1Config(bad), { code: 'E_STAGE1_CONFIG' });
  const sig = signStage1Config(f.config, {
    key: f.user.key,
    chain: [f.user.cert],
    now: new Date(1_700_000_000_000),
  });
  t.is(verifyStage1Config(f.config, sig, { anchors: [f.userRoot] }).subject, 'user');
  t.throws(() => verifyStage1Config(bad, sig, { anchors: [f.userRoot] }), { code: 'E_STAGE1_SIGNATURE' });
  t.throws(() => signStage1Config(f.config, { key: f.vendor.key, chain: [f.vendor.cert], now: new Date() }), {
    code: 'E_ROLE_MAY_NOT_SIGN',
  });
  // The C reader refuses the same damaged config.
  const dir = await tempDir(t);
  const r = await cVerify(dir, bad, f.image);
  t.true(r.out.startsWith('E_STAGE1_CONFIG'), r.out);
});
