// The update bundle (doc/update-bundle.md): made from CoreOS files and signed by the vendor,
// verified whole; every refusal has its code — a flipped signature, the wrong role, a cut
// file, a changed member, a downgrade, a replayed index below the floor, another
// architecture — and `mway-image bundle create|verify` on a disk. Cross-checked: GNU tar
// lists the members, veritysetup verifies the erofs and tree cut out of the bundle.

import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../common/exec.ts';
import { signEnvelope } from '../../keys/index.ts';
import {
  BUNDLE_FORMAT,
  compareVersions,
  readBundleLayout,
  readDiskSlots,
  UpdateError,
  verifyBundle,
  verifyBundleHead,
  writeBundle,
} from '../../update/index.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { devKeys, makeBundle, makeCoreos, makeSlotDisk, makeStage2, NOW } from './_slot-disk.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const fixture = async (t: import('ava').ExecutionContext) => {
  const dir = await tempDir(t, 'mway-bundle-');
  const keys = await devKeys(dir);
  const v2 = await makeCoreos(dir, keys, { version: '2.0' });
  const stage2 = await makeStage2(dir, keys, v2, { version: '2.0', rollbackIndex: 5 });
  const b = await makeBundle(dir, keys, v2, { version: '2.0', rollbackIndex: 5, stage2 });
  return { dir, keys, v2, stage2, ...b, anchors: [keys.vendorRoot, keys.userRoot] };
};

async function refused(
  t: import('ava').ExecutionContext,
  p: Promise<unknown>,
  code: string,
): Promise<UpdateError> {
  const e = await t.throwsAsync(p);
  t.true(e instanceof UpdateError, String(e));
  t.is((e as UpdateError).code as string, code, (e as Error).message);
  return e as UpdateError;
}

test('createBundle() writes a bundle verifyBundle() accepts; tar and veritysetup read it', async (t) => {
  const f = await fixture(t);
  const r = await verifyBundle(f.path, { anchors: f.anchors, at: NOW });
  t.is(r.manifest.format, BUNDLE_FORMAT);
  t.is(r.manifest.version, '2.0');
  t.is(r.manifest.rollbackIndex, 5);
  t.is(r.manifest.coreos.rootHash, f.v2.rootHash);
  t.is(r.signer.role, 'vendor');
  const listed = (await run('tar', ['-tf', f.path], { timeout: 30_000 })).stdout.trim().split('\n');
  t.deepEqual(listed, ['bundle.json', 'coreos.erofs', 'coreos.verity', 'coreos.verity-sig', 'stage2']);
  t.is(r.manifest.stage2.sha256, sha(await readFile(f.stage2)));
  await run('tar', ['-xf', f.path, '-C', f.dir, 'coreos.erofs', 'coreos.verity'], { timeout: 30_000 });
  const v = await run(
    'veritysetup',
    ['verify', join(f.dir, 'coreos.erofs'), join(f.dir, 'coreos.verity'), f.v2.rootHash],
    { reject: false, timeout: 60_000 },
  );
  t.is(v.exitCode, 0, v.stderr);
  t.is(r.layout.members[0].offset % 4096, 0);
});

test('verifyBundle() refuses a bundle whose signature or manifest bytes changed (E_BUNDLE_SIGNATURE / E_BUNDLE_MALFORMED)', async (t) => {
  const f = await fixture(t);
  const l = readBundleLayout(f.path);
  const text = Buffer.from(l.envelope).toString();
  // A changed rollback index in the signed payload: the signature no longer covers it.
  const forged = join(f.dir, 'forged.mwu');
  await copyFile(f.path, forged);
  const at = 512 + text.indexOf('"rollbackIndex":5');
  const fh = await open(forged, 'r+');
  await fh.write(Buffer.from('"rollbackIndex":9'), 0, 17, at);
  await fh.close();
  await refused(t, verifyBundle(forged, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_SIGNATURE');
  // Not trusted: another vendor root.
  const other = await devKeys(join(f.dir, 'other'));
  await refused(t, verifyBundle(f.path, { anchors: [other.vendorRoot], at: NOW }), 'E_BUNDLE_SIGNATURE');
  // Padding that is not spaces rides along unsigned: refused.
  const padded = join(f.dir, 'padded.mwu');
  await copyFile(f.path, padded);
  const ph = await open(padded, 'r+');
  await ph.write(Buffer.from('x'), 0, 1, 512 + l.envelope.length + 1);
  await ph.close();
  await refused(t, verifyBundle(padded, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_MALFORMED');
});

test('verifyBundle() refuses a bundle signed by a role that may not sign updates (E_BUNDLE_ROLE)', async (t) => {
  const f = await fixture(t);
  const l = readBundleLayout(f.path);
  const env = JSON.parse(Buffer.from(l.envelope).toString()) as { payload: unknown };
  // The user key may sign layers and configs, never updates: keys/ refuses to sign, so the
  // envelope is made with the vendor key and its signature block swapped for a user's.
  const t1 = t.throws(() =>
    signEnvelope({
      type: 'update',
      payload: env.payload,
      key: f.keys.user.key,
      chain: f.keys.user.chain,
      now: NOW,
    }),
  );
  t.is((t1 as { code?: string }).code, 'E_ROLE_MAY_NOT_SIGN');
  const asFile = signEnvelope({
    type: 'file',
    payload: env.payload,
    key: f.keys.user.key,
    chain: f.keys.user.chain,
    now: NOW,
  });
  const swapped = { ...asFile, type: 'update' };
  const out = join(f.dir, 'user.mwu');
  await writeBundle(out, {
    envelope: swapped as typeof asFile,
    files: [f.v2.erofs, f.v2.verity, f.v2.veritySig, f.stage2],
    mtime: 0,
  });
  await refused(t, verifyBundle(out, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_ROLE');
});

test('verifyBundle() refuses a cut file (E_BUNDLE_TRUNCATED) and a changed member (E_BUNDLE_DIGEST)', async (t) => {
  const f = await fixture(t);
  const size = (await readFile(f.path)).length;
  for (const cut of [100, 600, Math.floor(size / 2), size - 1024, size - 1]) {
    const p = join(f.dir, `cut-${cut}.mwu`);
    await copyFile(f.path, p);
    await truncate(p, cut);
    await refused(t, verifyBundle(p, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_TRUNCATED');
  }
  const l = readBundleLayout(f.path);
  const flipped = join(f.dir, 'flipped.mwu');
  await copyFile(f.path, flipped);
  const fh = await open(flipped, 'r+');
  await fh.write(Buffer.from([0xff]), 0, 1, l.members[0].offset + 8192 + 17);
  await fh.close();
  const e = await refused(t, verifyBundle(flipped, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_DIGEST');
  t.is(e.details?.member, 'coreos.erofs');
  // Data after the end of the archive.
  const longer = join(f.dir, 'longer.mwu');
  await copyFile(f.path, longer);
  await writeFile(longer, Buffer.alloc(512, 1), { flag: 'a' });
  await refused(t, verifyBundle(longer, { anchors: f.anchors, at: NOW }), 'E_BUNDLE_MALFORMED');
});

test('verifyBundle() policy: another architecture, another OS, not newer, below the rollback floor', async (t) => {
  const f = await fixture(t);
  const o = { anchors: f.anchors, at: NOW };
  await refused(t, verifyBundle(f.path, { ...o, policy: { architecture: 'aarch64' } }), 'E_BUNDLE_ARCH');
  await refused(
    t,
    verifyBundle(f.path, { ...o, policy: { running: { name: 'other', version: '1.0' } } }),
    'E_BUNDLE_NAME',
  );
  for (const running of ['2.0', '2.0.1', '10'])
    await refused(
      t,
      verifyBundle(f.path, { ...o, policy: { running: { name: 'milkyway', version: running } } }),
      'E_BUNDLE_DOWNGRADE',
    );
  await refused(t, verifyBundle(f.path, { ...o, policy: { rollbackFloor: 6 } }), 'E_BUNDLE_ROLLBACK');
  const ok = await verifyBundle(f.path, {
    ...o,
    policy: { architecture: 'x86_64', running: { name: 'milkyway', version: '1.9' }, rollbackFloor: 5 },
  });
  t.is(ok.manifest.version, '2.0');
});

test('verifyBundle() refuses a CoreOS verity signature for another version (E_BUNDLE_COREOS_SIG)', async (t) => {
  const f = await fixture(t);
  // The vendor signs a bundle calling CoreOS 2.0 "3.0": the inner coreos signature says 2.0.
  const b = await makeBundle(f.dir, f.keys, f.v2, { version: '3.0', rollbackIndex: 6 }).catch(
    (e: unknown) => e,
  );
  t.true(b instanceof UpdateError);
  t.is((b as UpdateError).code, 'E_BUNDLE_COREOS_SIG');
});

test('createBundle() refuses a stage 2 that stage 1 would refuse or that names another CoreOS, version or index (E_BUNDLE_STAGE2)', async (t) => {
  const f = await fixture(t);
  const stage2Code = async (stage2: string, o: { version?: string; rollbackIndex?: number } = {}) => {
    const e = await makeBundle(f.dir, f.keys, f.v2, {
      version: o.version ?? '2.0',
      rollbackIndex: o.rollbackIndex ?? 5,
      stage2,
      out: join(f.dir, `refused-${Math.random()}.mwu`),
    }).catch((x: unknown) => x);
    t.true(e instanceof UpdateError, String(e));
    t.is((e as UpdateError).code, 'E_BUNDLE_STAGE2', (e as Error).message);
    return e as UpdateError;
  };
  // Stage 2 of another CoreOS (the 1.0 root hash) in a bundle of 2.0.
  const v1 = await makeCoreos(f.dir, f.keys, { version: '1.0' });
  const e1 = await stage2Code(await makeStage2(f.dir, f.keys, v1, { version: '2.0', rollbackIndex: 5 }));
  t.regex(e1.message, /root hash/);
  // Signed with rollback index 4, the manifest says 5.
  const e2 = await stage2Code(await makeStage2(f.dir, f.keys, f.v2, { version: '2.0', rollbackIndex: 4 }));
  t.regex(e2.message, /rollback index 4/);
  // Signed by another vendor's key: not the bundle's signer.
  const other = await devKeys(join(f.dir, 'other'));
  const e3 = await stage2Code(await makeStage2(f.dir, other, f.v2, { version: '2.0', rollbackIndex: 5 }));
  t.is(e3.details?.bootchainCode, 'E_DESC_KEY_UNPINNED');
  // A kernel byte changed after the vendor signed the descriptor.
  const bytes = await readFile(f.stage2);
  bytes[12288 + 100] = (bytes[12288 + 100] as number) ^ 1;
  const changed = join(f.dir, 'changed-stage2.img');
  await writeFile(changed, bytes);
  t.is((await stage2Code(changed)).details?.bootchainCode, 'E_DESC_KERNEL_DIGEST');
  // Trailing bytes the descriptor does not cover.
  const longer = join(f.dir, 'longer-stage2.img');
  await writeFile(longer, Buffer.concat([await readFile(f.stage2), Buffer.alloc(4096, 1)]));
  t.regex((await stage2Code(longer)).message, /only zero padding/);
});

test('verifyBundleHead() checks the signature and the policy from the first bytes; null before bundle.json ends', async (t) => {
  const f = await fixture(t);
  const bytes = await readFile(f.path);
  const l = readBundleLayout(f.path);
  const o = { anchors: f.anchors, at: NOW };
  t.is(verifyBundleHead(bytes.subarray(0, 100), o), null);
  t.is(verifyBundleHead(bytes.subarray(0, 512 + l.envelope.length), o), null);
  const head = bytes.subarray(0, 2 * 1024 * 1024);
  t.is(verifyBundleHead(head, o)?.manifest.version, '2.0');
  const policy = { running: { name: 'milkyway', version: '2.0' } };
  const e = t.throws(() => verifyBundleHead(head, { ...o, policy }));
  t.is((e as UpdateError).code, 'E_BUNDLE_DOWNGRADE');
  const floor = t.throws(() => verifyBundleHead(head, { ...o, policy: { rollbackFloor: 6 } }));
  t.is((floor as UpdateError).code, 'E_BUNDLE_ROLLBACK');
  const other = await devKeys(join(f.dir, 'other'));
  const e2 = t.throws(() => verifyBundleHead(head, { anchors: [other.vendorRoot], at: NOW }));
  t.is((e2 as UpdateError).code, 'E_BUNDLE_SIGNATURE');
  // A changed signed byte in the first piece, and a first member that is not bundle.json.
  const forged = Buffer.from(head);
  const at = 512 + Buffer.from(l.envelope).toString().indexOf('"rollbackIndex":5');
  forged.write('"rollbackIndex":9', at);
  t.is((t.throws(() => verifyBundleHead(forged, o)) as UpdateError).code, 'E_BUNDLE_SIGNATURE');
  t.is(
    (t.throws(() => verifyBundleHead(bytes.subarray(l.members[0].offset - 512), o)) as UpdateError).code,
    'E_BUNDLE_MALFORMED',
  );
});

test('compareVersions() orders like systemd compare-versions', (t) => {
  const pairs: [string, string, number][] = [
    ['1.0', '1.0', 0],
    ['1.0', '1.1', -1],
    ['1.10', '1.9', 1],
    ['2', '10', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0a', '1.0', 1],
    ['1.0', '1.0.1', -1],
  ];
  for (const [a, b, want] of pairs) t.is(Math.sign(compareVersions(a, b)), want, `${a} vs ${b}`);
});

test('mway-image bundle create DISK and bundle verify: exit 0, --json; a refused bundle exits 1 with its code', async (t) => {
  const dir = await tempDir(t, 'mway-bundle-cli-');
  const keys = await devKeys(dir);
  const v1 = await makeCoreos(dir, keys, { version: '1.0' });
  // boot-a's stage 2 is signed with rollback index 1 (the spec's bootchain.rollbackIndex).
  const disk = await makeSlotDisk(dir, v1, '1.0', { bootChain: keys });
  const out = join(dir, 'from-disk.mwu');
  const create = (...extra: string[]) =>
    cli('mway-image', ['bundle', 'create', disk, '-o', out, '--keys', join(dir, 'keys'), ...extra]);
  const wrong = await create('--rollback-index', '3');
  t.is(wrong.exitCode, 1, wrong.stderr);
  t.regex(wrong.stderr, /E_BUNDLE_STAGE2: Rollback index 3 is not the 1 signed into/);
  const c = await create('--rollback-index', '1', '--json');
  t.is(c.exitCode, 0, c.stderr);
  const j = jsonOut(c.stdout) as { version: string; rootHash: string; rollbackIndex: number };
  t.is(j.version, '1.0');
  t.is(j.rootHash, v1.rootHash);
  t.is(j.rollbackIndex, 1);
  // The stage 2 in the bundle is boot-a's, byte for byte up to its descriptor's end.
  const l = readBundleLayout(out);
  const st = l.members[3];
  const slots = await readDiskSlots(disk);
  const boot = slots.a.boot;
  if (boot === null) return t.fail('no boot-a');
  const d = await readFile(disk);
  const b = await readFile(out);
  const at = Number(boot.firstLba) * 512;
  t.true(b.subarray(st.offset, st.offset + st.size).equals(d.subarray(at, at + st.size)));
  const trust = join(dir, 'keys', 'vendor-root.crt');
  const v = await cli('mway-image', ['bundle', 'verify', out, '--trust', trust]);
  t.is(v.exitCode, 0, v.stderr);
  t.regex(v.stdout, /milkyway 1\.0 \(x86_64\), rollback index 1/);
  const dn = await cli('mway-image', [
    'bundle',
    'verify',
    out,
    '--trust',
    trust,
    '--running',
    'milkyway_1.0',
  ]);
  t.is(dn.exitCode, 1);
  t.regex(dn.stderr, /E_BUNDLE_DOWNGRADE/);
  const n = await cli('mway-image', ['bundle', 'verify', out]);
  t.is(n.exitCode, 2, n.stderr);
  // A disk without a boot chain has no stage 2 to carry.
  await mkdir(join(dir, 'old'));
  const old = await makeSlotDisk(join(dir, 'old'), v1, '1.0');
  const o = await cli('mway-image', [
    'bundle',
    'create',
    old,
    '-o',
    join(dir, 'old.mwu'),
    '--keys',
    join(dir, 'keys'),
  ]);
  t.is(o.exitCode, 1);
  t.regex(o.stderr, /E_BUNDLE_STAGE2: .* has no boot-a partition/);
});
