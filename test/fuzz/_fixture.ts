// The signed artifacts the mutation harness damages, made once per test file into a directory
// the runner processes read back: a PKI (user root, vendor root, vendor, user, operator, peer
// with its ML-KEM key), a CRL, detached signatures, an envelope of each type, a sealed secret,
// a small layer, a secure config (file and erofs image) and a small GPT disk with a dm-verity
// data/hash pair and its signature partition. Everything the runner needs is a file here.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildCommand,
  createEnrollmentRequest,
  signMembership,
  signResult,
  signStatus,
} from '../../control/wire/index.ts';
import { DPS, formatVerity, makeErofs, writeCpio, writeGpt } from '../../formats/index.ts';
import { encodeVeritySig, signSecureConfig } from '../../imagebuild/index.ts';
import {
  canonicalJson,
  crlPem,
  issueCrl,
  newIdentity,
  readCertificates,
  readPrivateKey,
  sealSecret,
  serialize,
  signDetached,
  signEnvelope,
  type Certificate,
  type SigningKey,
} from '../../keys/index.ts';
import { packLayer } from '../../layers/index.ts';

export interface Ident {
  key: SigningKey;
  chain: Certificate[];
  keyPath: string;
  certPath: string;
}

async function ident(r: { keyPath: string; certPath: string }): Promise<Ident> {
  return { key: await readPrivateKey(r.keyPath), chain: await readCertificates(r.certPath), ...r };
}

/** What the runner reads back: file names (relative to the fixture dir) and facts. */
export interface FuzzFixture {
  dir: string;
  /** ISO time every verification runs at (inside every certificate's validity). */
  at: string;
  fleet: string;
  peerId: string;
  files: Record<string, string>;
  disk: { rootHash: string; dataBlocks: number; hashSize: number };
}

export const SECRET_CONTEXT = 'layer:web';

export async function makeFuzzFixture(dir: string): Promise<FuzzFixture> {
  await mkdir(dir, { recursive: true });
  const pki = join(dir, 'pki');
  const now = new Date();
  const root = await ident(await newIdentity({ role: 'user-root', name: 'uroot', outDir: pki }));
  const vroot = await ident(await newIdentity({ role: 'vendor-root', name: 'vroot', outDir: pki }));
  const underUser = { outDir: pki, issuerKey: root.key, issuerCert: root.chain[0] as Certificate };
  const vendor = await ident(
    await newIdentity({
      role: 'vendor',
      name: 'vendor',
      outDir: pki,
      issuerKey: vroot.key,
      issuerCert: vroot.chain[0] as Certificate,
    }),
  );
  const user = await ident(await newIdentity({ ...underUser, role: 'user', name: 'user' }));
  const op = await ident(
    await newIdentity({ ...underUser, role: 'operator', name: 'op', groups: ['*'], actions: ['*'] }),
  );
  const peerIds = await newIdentity({ ...underUser, role: 'peer', name: 'p1', peerId: 'p1' });
  const peer = await ident(peerIds);
  const revoked = await ident(await newIdentity({ ...underUser, role: 'user', name: 'revoked' }));
  const crl = await issueCrl({
    issuerKey: root.key,
    issuerCert: root.chain[0] as Certificate,
    serials: [(revoked.chain[0] as Certificate).serial],
  });
  const files: Record<string, string> = {};
  const put = async (name: string, data: string | Uint8Array): Promise<void> => {
    await writeFile(join(dir, name), data);
    files[name.replace(/\..*$/, '')] = name;
  };
  await put('root.der', (root.chain[0] as Certificate).der);
  await put('vroot.der', (vroot.chain[0] as Certificate).der);
  await put('peer.der', (peer.chain[0] as Certificate).der);
  await put(
    'peer-bundle.pem',
    peerIds.certPath === undefined
      ? ''
      : await import('node:fs/promises').then((f) => f.readFile(peerIds.certPath, 'utf8')),
  );
  await put(
    'kem.key',
    await import('node:fs/promises').then((f) => f.readFile(peerIds.kemKeyPath as string)),
  );
  await import('node:fs/promises').then((f) => f.chmod(join(dir, 'kem.key'), 0o600));
  await put('crl.der', crl.der);
  await put('crl-pem.crl', crlPem(crl));
  await put('user-crl-revoked.der', (revoked.chain[0] as Certificate).der);

  // Detached signatures: the `mway keys sign` file (signature with chain) and a fingerprint-only one.
  const data = new TextEncoder().encode('the signed file\n');
  await put('data.txt', data);
  const sig = signDetached({ type: 'file', data, key: op.key, chain: op.chain.slice(0, 1) });
  await put('data-sig.json', canonicalJson({ v: 1, type: 'file', signature: sig }));
  await put(
    'data-sig-fpr.json',
    canonicalJson(signDetached({ type: 'file', data, key: op.key, chain: op.chain, fingerprintOnly: true })),
  );

  // An attached envelope of each type, signed by a role that may sign it, leaf-only chain.
  const fleet = 'prod';
  const leaf = (i: Ident) => i.chain.slice(0, 1);
  const env = (type: Parameters<typeof signEnvelope>[0]['type'], by: Ident, payload: unknown) =>
    serialize(signEnvelope({ type, payload, key: by.key, chain: leaf(by), now }));
  const command = buildCommand({
    action: 'status',
    audience: { fleet, target: 'p1', groups: [], peers: ['p1'] },
    seq: 1,
    key: op.key,
    chain: op.chain,
    now,
  });
  await put('env-command.json', serialize(command));
  await put(
    'env-membership.json',
    serialize(
      signMembership({ fleet, group: 'web', peer: 'p1', member: true, key: op.key, chain: op.chain, now }),
    ),
  );
  const stamp = now.toISOString();
  await put(
    'env-result.json',
    serialize(
      signResult(
        {
          v: 1,
          command: 'a'.repeat(32),
          commandDigest: 'b'.repeat(64),
          peer: 'p1',
          status: 'ok',
          output: { up: true },
          startedAt: stamp,
          finishedAt: stamp,
        },
        peer.key,
        peer.chain,
      ),
    ),
  );
  await put(
    'env-status.json',
    serialize(
      signStatus(
        {
          v: 1,
          peer: 'p1',
          fleet,
          at: stamp,
          agent: { state: 'running' },
          layers: [],
          services: [],
          groups: ['web'],
        },
        peer.key,
        peer.chain,
      ),
    ),
  );
  await put(
    'env-coreos.json',
    env('coreos', vendor, {
      rootHash: '0'.repeat(64),
      name: 'milkyway',
      version: '1.0.0',
      architecture: 'x86_64',
    }),
  );
  await put('env-bundle.json', env('bundle', vendor, { kernel: 'c'.repeat(64), initrd: 'd'.repeat(64) }));
  await put('env-stage1.json', env('stage1', user, { image: 'e'.repeat(64) }));
  await put('env-layer.json', env('layer', vendor, { name: 'x', version: '1.0.0' }));
  await put('env-file.json', env('file', op, 'a file payload'));
  await put(
    'env-config.json',
    signSecureConfig({ payload: { groups: {} }, key: user.key, chain: leaf(user), now }),
  );
  await put(
    'env-secret.json',
    serialize(
      sealSecret({
        plaintext: new TextEncoder().encode('s3cret'),
        recipient: peer.chain[0] as Certificate,
        context: SECRET_CONTEXT,
        key: op.key,
        chain: leaf(op),
        now,
      }),
    ),
  );

  // A small layer.
  const src = join(dir, 'layer-src');
  await mkdir(join(src, 'rootfs/bin'), { recursive: true });
  await writeFile(join(src, 'rootfs/bin/hello'), '#!/bin/sh\necho hello\n');
  await writeFile(join(src, 'layer.json'), JSON.stringify({ name: 'hello', version: '1.0.0', kind: 'app' }));
  await packLayer({
    dir: src,
    key: vendor.key,
    chain: leaf(vendor),
    out: join(dir, 'hello.mwl'),
    sourceDateEpoch: 1_700_000_000,
  });
  files.hello = 'hello.mwl';

  // The secure config as the disk carries it: erofs holding secure.json.
  const sc = join(dir, 'sc-src');
  await mkdir(sc);
  await writeFile(
    join(sc, 'secure.json'),
    await import('node:fs/promises').then((f) => f.readFile(join(dir, 'env-config.json'))),
  );
  await makeErofs(sc, join(dir, 'secure-config.erofs'), { sourceDateEpoch: 1_700_000_000, rootOwner: true });
  files['secure-config'] = 'secure-config.erofs';

  // A small disk: a data partition (erofs), its verity hash partition, and the verity-sig.
  const img = join(dir, 'data.erofs');
  const rootfs = join(dir, 'disk-src');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc/os-release'), 'NAME=MilkyWay\n'.repeat(400));
  await makeErofs(rootfs, img, { sourceDateEpoch: 1_700_000_000, rootOwner: true });
  const hash = join(dir, 'data.verity');
  const v = await formatVerity(img, { hashPath: hash, pad: true });
  const sigPart = join(dir, 'data.sig');
  await writeFile(
    sigPart,
    encodeVeritySig({
      payload: { rootHash: v.rootHash, name: 'milkyway', version: '1.0.0', architecture: 'x86_64' },
      key: vendor.key,
      chain: leaf(vendor),
      now,
    }),
  );
  const uuid = (hex: string) =>
    `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  await writeGpt(join(dir, 'disk.img'), {
    sizeBytes: 5 << 20,
    diskGuid: '11111111-2222-4333-8444-555555555555',
    partitions: [
      { name: 'root', type: DPS.root, uuid: uuid(v.rootHash.slice(0, 32)), sizeBytes: 1 << 20, image: img },
      {
        name: 'root-verity',
        type: DPS.rootVerity,
        uuid: uuid(v.rootHash.slice(32)),
        sizeBytes: 1 << 20,
        image: hash,
      },
      { name: 'root-verity-sig', type: DPS.rootVeritySig, sizeBytes: 1 << 20, image: sigPart },
    ],
  });
  files.disk = 'disk.img';

  // Inputs of decoders that take unsigned data.
  await put(
    'op-chain.pem',
    (await import('../../keys/index.ts')).certificatePem((op.chain[0] as Certificate).der),
  );
  await put(
    'small.cpio',
    await writeCpio(
      [
        { type: 'dir', path: 'etc', mode: 0o755 },
        { type: 'file', path: 'etc/hostname', mode: 0o644, data: new TextEncoder().encode('milkyway\n') },
        { type: 'symlink', path: 'init', target: 'sbin/init' },
      ],
      { sourceDateEpoch: 1_700_000_000 },
    ),
  );
  await put('frame.json', JSON.stringify({ v: 1, kind: 'hello', id: 1, role: 'peer', peerId: 'p1', fleet }));
  const kemPub = (peer.chain[0] as Certificate).kemPublicKey as Uint8Array;
  await put(
    'enroll.json',
    JSON.stringify(createEnrollmentRequest({ key: peer.key, kemPublicKey: kemPub, peerId: 'p2', now })),
  );
  await put(
    'agent.json',
    JSON.stringify({
      stateDir: '/run',
      trustAnchorsDir: '/certs',
      layersDir: '/layers',
      dataDir: '/data',
      allowUserspaceVerity: true,
      logs: { fileBytes: 1048576 },
    }),
  );
  await put(
    'image.json',
    JSON.stringify({
      name: 'milkyway',
      version: '1.0.0',
      architecture: 'x86_64',
      kernel: { package: 'linux-image-amd64' },
      layers: [],
      keys: 'generate',
      secureConfig: { hostname: 'h', groups: {} },
      partitions: { esp: 64, layers: 64, data: 64 },
    }),
  );
  // A docker-save image archive (one layer with a file, a directory and a symlink).
  const oci = join(dir, 'oci-src');
  await mkdir(join(oci, 'root/etc'), { recursive: true });
  await writeFile(join(oci, 'root/etc/motd'), 'hello\n');
  const { execa } = await import('execa');
  await execa('ln', ['-s', 'motd', join(oci, 'root/etc/issue')]);
  await execa('tar', [
    '--sort=name',
    '--mtime=@1700000000',
    '--owner=0',
    '--group=0',
    '-cf',
    join(oci, 'layer.tar'),
    '-C',
    join(oci, 'root'),
    '.',
  ]);
  const { createHash } = await import('node:crypto');
  const { readFile: rf } = await import('node:fs/promises');
  const diff = createHash('sha256')
    .update(await rf(join(oci, 'layer.tar')))
    .digest('hex');
  await writeFile(
    join(oci, 'config.json'),
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] },
    }),
  );
  await writeFile(
    join(oci, 'manifest.json'),
    JSON.stringify([{ Config: 'config.json', RepoTags: ['hello:1.0.0'], Layers: ['layer.tar'] }]),
  );
  await execa('tar', [
    '--mtime=@1700000000',
    '-cf',
    join(dir, 'image.tar'),
    '-C',
    oci,
    'manifest.json',
    'config.json',
    'layer.tar',
  ]);
  files.image = 'image.tar';
  await writeFile(join(dir, 'vendor.key'), await rf(vendor.keyPath));
  await import('node:fs/promises').then((f) => f.chmod(join(dir, 'vendor.key'), 0o600));
  await writeFile(join(dir, 'vendor.pem'), await rf(vendor.certPath));

  const fixture: FuzzFixture = {
    dir,
    at: now.toISOString(),
    fleet,
    peerId: 'p1',
    files,
    disk: { rootHash: v.rootHash, dataBlocks: v.dataBlocks, hashSize: v.hashSize },
  };
  await writeFile(join(dir, 'fixture.json'), JSON.stringify(fixture, null, 2));
  return fixture;
}
