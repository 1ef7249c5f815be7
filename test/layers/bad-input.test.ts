// Every kind of bad .mwl the issue lists, each refused with its own code, and bad pack
// inputs that must leave no file behind.
import test from 'ava';
import { execa } from 'execa';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { canonicalJson, sign } from '../../keys/index.ts';
import { extractFiles, packLayer, readLayer, verifyLayer } from '../../layers/index.ts';
import { signManifest } from '../../layers/layer-signature.ts';
import { BLOCK, encodeHeader, pad512 } from '../../layers/mwl-tar.ts';
import { manifestMember, writeMwl } from '../../layers/mwl-write.ts';
import { cli, tempDir } from '../helpers.ts';
import { layerSource, pki } from './fixture.ts';

interface M {
  name: string;
  data: Buffer;
  typeflag?: string;
}

/** The packed layers' SOURCE_DATE_EPOCH: every canonical header carries it as mtime. */
const EPOCH = 1_700_000_000;

function header(m: M): Buffer {
  const h = encodeHeader('x', m.data.length, EPOCH);
  h.fill(0, 0, 100);
  h.write(m.name, 0, 100, 'latin1');
  if (m.typeflag !== undefined) h.write(m.typeflag, 156, 1, 'latin1');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

function build(members: M[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) parts.push(header(m), m.data, Buffer.alloc(pad512(m.data.length) - m.data.length));
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

async function membersOf(path: string): Promise<M[]> {
  const l = await readLayer(path);
  const file = await readFile(path);
  return l.members.map((m) => ({ name: m.name, data: file.subarray(m.offset, m.offset + m.size) }));
}

async function packed(
  t: import('ava').ExecutionContext,
  who: 'vendor' | 'user' | 'expired' | 'revoked' = 'vendor',
  policy = true,
) {
  const p = await pki();
  const dir = await tempDir(t);
  const out = join(dir, 'l.mwl');
  await packLayer({
    dir: await layerSource(join(dir, 'src'), { policy }),
    key: p[who].key,
    chain: p[who].chain,
    out,
    sourceDateEpoch: EPOCH,
  });
  return { p, dir, out, anchors: [p.vendorRoot.cert, p.userRoot.cert] };
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'NO ERROR';
}

test('tampering: manifest, payload, hash tree, verity superblock, policy', async (t) => {
  const { out, dir, anchors } = await packed(t);
  const l = await readLayer(out);
  const orig = await readFile(out);
  const at = async (name: string, offset: number, mutate: (b: Buffer) => void) => {
    const b = Buffer.from(orig);
    mutate(b.subarray(offset));
    const f = join(dir, `${name}.mwl`);
    await writeFile(f, b);
    return code(verifyLayer(f, { anchors }));
  };
  const desc = orig.indexOf('test app');
  t.is(await at('manifest', desc, (b) => b.write('TEST APP')), 'E_SIG_INVALID');
  // Valid JSON, same size, but not canonical: a space after the opening brace.
  const canon = Buffer.from(l.manifestBytes);
  t.is(
    await at('noncanon', l.members[0]!.offset, (b) => {
      Buffer.concat([Buffer.from('{ '), canon.subarray(1)]).copy(b);
    }),
    'E_MANIFEST_NOT_CANONICAL',
  );
  t.is(
    await at('payload', l.payloadOffset + 100, (b) => {
      b[0]! ^= 1;
    }),
    'E_PAYLOAD_DIGEST',
  );
  t.is(
    await at('tree', l.verityOffset + 4096 + 5, (b) => {
      b[0]! ^= 1;
    }),
    'E_VERITY_TREE_MISMATCH',
  );
  t.is(
    await at('superblock', l.verityOffset + 88, (b) => {
      b[0]! ^= 1;
    }),
    'E_VERITY_SUPERBLOCK',
  );
  const pol = l.members.find((m) => m.name === 'policy.cil')!;
  t.is(
    await at('policy', pol.offset, (b) => {
      b[0]! ^= 1;
    }),
    'E_POLICY_DIGEST',
  );
  // --quick (no payload pass) still catches the tree superblock, not data: the kernel does that.
  t.truthy(await verifyLayer(out, { anchors, verity: false }));
});

test('structure: missing, extra, duplicate, reordered, traversal, absolute, link members, unsigned', async (t) => {
  const { out, dir, anchors } = await packed(t);
  const ms = await membersOf(out);
  const [lj, pe, pv, pc, s1] = ms as [M, M, M, M, M];
  const cases: [string, M[], string][] = [
    ['missing', [lj, pe, pc, s1], 'E_LAYER_MEMBER_MISSING'],
    ['extra', [lj, pe, pv, pc, s1, { name: 'run.sh', data: Buffer.from('x') }], 'E_LAYER_MEMBER_EXTRA'],
    ['duplicate', [lj, pe, pv, pv, pc, s1], 'E_LAYER_MEMBER_DUPLICATE'],
    ['reordered', [lj, pv, pe, pc, s1], 'E_LAYER_MEMBER_ORDER'],
    ['traversal', [{ ...lj, name: '../layer.json' }, pe, pv, pc, s1], 'E_LAYER_PATH'],
    ['absolute', [{ ...lj, name: '/layer.json' }, pe, pv, pc, s1], 'E_LAYER_PATH'],
    [
      'symlink',
      [lj, pe, pv, pc, s1, { name: 'signature.2.json', data: Buffer.alloc(0), typeflag: '2' }],
      'E_LAYER_MEMBER_TYPE',
    ],
    [
      'hardlink',
      [lj, pe, pv, pc, s1, { name: 'signature.2.json', data: Buffer.alloc(0), typeflag: '1' }],
      'E_LAYER_MEMBER_TYPE',
    ],
    ['unsigned', [lj, pe, pv, pc], 'E_LAYER_UNSIGNED'],
    ['policy removed', [lj, pe, pv, s1], 'E_LAYER_MEMBER_MISSING'],
    [
      'oversized manifest',
      [{ name: 'layer.json', data: Buffer.alloc(2 * 1024 * 1024, 0x20) }, pe, pv, pc, s1],
      'E_MANIFEST_TOO_LARGE',
    ],
  ];
  for (const [what, members, want] of cases) {
    const f = join(dir, `${what}.mwl`);
    await writeFile(f, build(members));
    t.is(await code(verifyLayer(f, { anchors })), want, what);
  }
  // Truncated: cut inside the payload, and just before the end marker.
  const whole = await readFile(out);
  for (const [what, len] of [
    ['mid-payload', 6000],
    ['no end marker', whole.length - 1024],
  ] as const) {
    const f = join(dir, `trunc-${what}.mwl`);
    await writeFile(f, whole.subarray(0, len));
    t.is(await code(verifyLayer(f, { anchors })), 'E_LAYER_TRUNCATED', what);
  }
  const f = join(dir, 'trailing.mwl');
  await writeFile(f, Buffer.concat([whole, Buffer.from('junk')]));
  t.is(await code(verifyLayer(f, { anchors })), 'E_LAYER_TRAILING');
});

test('signers: a role that may not sign layers, an expired and a revoked signer', async (t) => {
  const { p, out, dir, anchors } = await packed(t);
  // Forge a signature by the operator with the raw primitive (signEnvelope would refuse).
  const l = await readLayer(out);
  const head = {
    alg: p.operator.key.algorithm,
    created: '2024-01-01T00:00:00.000Z',
    signer: p.operator.cert.fingerprint,
  };
  const msg = canonicalJson({ v: 1, type: 'layer', ...head, payload: l.manifestJson });
  const sig = Buffer.from(sign(p.operator.key, msg, 'milkyway/v1/layer')).toString('base64');
  const forged = { ...head, chain: p.operator.chain.map((c) => Buffer.from(c.der).toString('base64')), sig };
  const ms = await membersOf(out);
  const f = join(dir, 'operator.mwl');
  await writeFile(
    f,
    build([...ms.slice(0, 4), { name: 'signature.1.json', data: Buffer.from(canonicalJson(forged)) }]),
  );
  t.is(await code(verifyLayer(f, { anchors })), 'E_ROLE_MAY_NOT_SIGN');

  const expired = await packed(t, 'expired');
  t.is(await code(verifyLayer(expired.out, { anchors })), 'E_CERT_EXPIRED');
  const revoked = await packed(t, 'revoked');
  t.truthy(await verifyLayer(revoked.out, { anchors }));
  t.is(await code(verifyLayer(revoked.out, { anchors, crls: [p.crl] })), 'E_CERT_REVOKED');
  t.is(
    await code(
      packLayer({
        dir: join(dir, 'src'),
        key: p.operator.key,
        chain: p.operator.chain,
        out: join(dir, 'op2.mwl'),
      }),
    ),
    'E_ROLE_MAY_NOT_SIGN',
  );
});

test('pack refuses device nodes, FIFOs and escaping symlinks and leaves no file', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const a = await layerSource(join(dir, 'a'));
  await execa('mkfifo', [join(a, 'rootfs/fifo')]);
  await execa('mknod', [join(a, 'rootfs/null'), 'c', '1', '3']);
  t.is(
    await code(packLayer({ dir: a, key: p.user.key, chain: p.user.chain, out: join(dir, 'a.mwl') })),
    'E_TREE_SPECIAL_FILE',
  );
  const b = await layerSource(join(dir, 'b'));
  await symlink('../../../../etc/passwd', join(b, 'rootfs/etc/evil'));
  t.is(
    await code(packLayer({ dir: b, key: p.user.key, chain: p.user.chain, out: join(dir, 'b.mwl') })),
    'E_TREE_LINK_ESCAPE',
  );
  const c = await layerSource(join(dir, 'c'), { manifest: { name: 'c', version: 'one', kind: 'app' } });
  t.is(
    await code(packLayer({ dir: c, key: p.user.key, chain: p.user.chain, out: join(dir, 'c.mwl') })),
    'E_MANIFEST_INVALID',
  );
  t.deepEqual((await readdir(dir)).sort(), ['a', 'b', 'c']);
});

test("pack refuses a key that is not the certificate's, or no chain, before it reads the tree", async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const a = await layerSource(join(dir, 'a'));
  // A FIFO in the tree would be E_TREE_SPECIAL_FILE: the signer is checked first, so a wrong
  // key fails at once instead of after mkfs.erofs and the hashing.
  await execa('mkfifo', [join(a, 'rootfs/fifo')]);
  // The user's key with the vendor's chain.
  t.is(
    await code(packLayer({ dir: a, key: p.user.key, chain: p.vendor.chain, out: join(dir, 'a.mwl') })),
    'E_KEY_MISMATCH',
  );
  t.is(
    await code(packLayer({ dir: a, key: p.user.key, chain: [], out: join(dir, 'a.mwl') })),
    'E_SIGNER_CHAIN',
  );
  t.deepEqual(await readdir(dir), ['a']);
});

test('extract refuses a tampered payload and leaves no directory', async (t) => {
  const { out, dir } = await packed(t, 'user');
  const l = await readLayer(out);
  const b = await readFile(out);
  b[l.payloadOffset + 10]! ^= 1;
  const f = join(dir, 'bad.mwl');
  await writeFile(f, b);
  t.is(await code(extractFiles(f, join(dir, 'x'))), 'E_PAYLOAD_DIGEST');
  t.false((await readdir(dir)).includes('x'));
});

test('a payload over 16 MiB (digest on a worker thread) verifies, and a flipped byte is caught', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'));
  const { randomBytes } = await import('node:crypto');
  await writeFile(join(src, 'rootfs/big.bin'), randomBytes(20 * 1024 * 1024));
  const out = join(dir, 'big.mwl');
  await packLayer({ dir: src, key: p.user.key, chain: p.user.chain, out, sourceDateEpoch: 1 });
  const v = await verifyLayer(out, { anchors: [p.userRoot.cert] });
  t.true(v.payloadSize > 20 * 1024 * 1024);
  const b = await readFile(out);
  // The tree came from formats/verity hashing on every core; the copying writer (no
  // fallocate --insert-range) must give the very same bytes.
  const copied = join(dir, 'copied.mwl');
  await packLayer({
    dir: src,
    key: p.user.key,
    chain: p.user.chain,
    out: copied,
    sourceDateEpoch: 1,
    inPlace: false,
  });
  t.true(b.equals(await readFile(copied)));
  // veritysetup (nobody's code here) accepts the tree built by the two-thread pass.
  await writeFile(join(dir, 'p.erofs'), b.subarray(v.payloadOffset, v.payloadOffset + v.payloadSize));
  await writeFile(join(dir, 'p.verity'), b.subarray(v.verityOffset, v.verityOffset + v.veritySize));
  const vs = await execa(
    'veritysetup',
    ['verify', join(dir, 'p.erofs'), join(dir, 'p.verity'), v.manifest.payload.verity.rootHash],
    { reject: false },
  );
  t.is(vs.exitCode, 0, vs.stderr);
  b[v.payloadOffset + 18 * 1024 * 1024]! ^= 1;
  await writeFile(out, b);
  const e = await t.throwsAsync(verifyLayer(out, { anchors: [p.userRoot.cert] }));
  t.is((e as { code?: string }).code, 'E_PAYLOAD_DIGEST');
  // The first bad data block is named: byte 18 MiB of the payload is in block 4608.
  t.like((e as { details?: object }).details ?? {}, { member: 'payload.erofs', block: 4608 });
});

test('a layer format 1 file (signed, payload SHA-256 bound) is refused naming its version: E_LAYER_FORMAT', async (t) => {
  const { p, out, dir, anchors } = await packed(t, 'user', false);
  const l = await readLayer(out);
  const file = await readFile(out);
  const payload = file.subarray(l.payloadOffset, l.payloadOffset + l.payloadSize);
  // The same layer as format 1 wrote it: format 1 and the whole-payload SHA-256, re-signed.
  const m = structuredClone(l.manifestJson) as { format: number; payload: Record<string, unknown> };
  m.format = 1;
  m.payload = { ...m.payload, sha256: createHash('sha256').update(payload).digest('hex') };
  const sig = signManifest(m, { key: p.user.key, chain: p.user.chain, now: new Date(EPOCH * 1000) });
  const lj = manifestMember(canonicalJson(m));
  const verity = file.subarray(l.verityOffset, l.verityOffset + l.veritySize);
  const sigBytes = canonicalJson(sig);
  const old = join(dir, 'format1.mwl');
  await writeMwl(
    old,
    [
      { name: 'layer.json', data: lj, size: lj.length },
      { name: 'payload.erofs', data: payload, size: payload.length },
      { name: 'payload.verity', data: verity, size: verity.length },
      { name: 'signature.1.json', data: sigBytes, size: sigBytes.length },
    ],
    EPOCH,
  );
  const e = await t.throwsAsync(verifyLayer(old, { anchors }));
  t.is((e as { code?: string }).code, 'E_LAYER_FORMAT');
  t.regex((e as Error).message, /is format 1; this version reads and writes layer format 2 only/);
  t.is(await code(extractFiles(old, join(dir, 'x'))), 'E_LAYER_FORMAT');
  const r = await cli('mway-layer', ['verify', old, '--trust', p.userRoot.certPath]);
  t.is(r.exitCode, 1);
  t.regex(r.stdout + r.stderr, /E_LAYER_FORMAT: .*format 1/);
});
