// Every artifact the harness damages and the decoder that must refuse the damage: the real
// verifier a user or the agent runs (verifyChain, verifyEnvelope and the per-type checks of
// control/ and the agent, verifyLayer, the GPT + verity + verity-sig chain of a disk), each fed
// the mutated bytes. `signed` artifacts must refuse every flip; decoders of unsigned input must
// only never crash, hang or leave files behind.
import { copyFile, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCommand } from '../../agent/remote/command-check.ts';
import { ReplayCache } from '../../agent/remote/replay-cache.ts';
import { readSecureConfig } from '../../agent/core/trust.ts';
import {
  decodeBody,
  verifyMembership,
  verifyResult,
  verifyStatus,
  checkEnrollmentRequest,
} from '../../control/wire/index.ts';
import {
  checkGptRedundancy,
  decodeVeritySuperblock,
  readCpio,
  readGpt,
  verifyVerity,
} from '../../formats/index.ts';
import { decodeVeritySig, extractErofs, ImageError, verifyVeritySig } from '../../imagebuild/index.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { readAgentConfig } from '../../agent/core/agent-config.ts';
import {
  type Certificate,
  type Crl,
  type EnvelopeType,
  openSecret,
  parseCertificates,
  parseCrl,
  parseEnvelope,
  readCertificates,
  readKemPrivateKey,
  readPrivateKey,
  verifyChain,
  verifyDetached,
  verifyEnvelope,
  verifySignatureFile,
} from '../../keys/index.ts';
import { importOci, readLayer, verifyLayer } from '../../layers/index.ts';
import { decodeHeader } from '../../layers/mwl-tar.ts';
import { type CasePlan, derBoundaries, derFraming, jsonBoundaries, jsonFraming } from './_mutate.ts';
import { type FuzzFixture, SECRET_CONTEXT } from './_fixture.ts';

export interface Artifact {
  name: string;
  /** Every flip of a byte must be refused (the artifact is signed, or covered by a signed digest). */
  signed: boolean | ((at: number) => boolean);
  bytes: Uint8Array;
  plan: CasePlan;
  /** 'bytes': decode gets the mutated bytes; 'file': a path holding them (same for every case). */
  mode: 'bytes' | 'file';
  decode(input: Uint8Array | string, scratch: string): Promise<unknown> | unknown;
  /**
   * What an accepted input means (e.g. the DER fingerprints a PEM text decodes to). An accepted
   * mutation that means exactly what the original means changed only framing nothing relies on
   * (PEM line endings): it is counted as equivalent, not as accepted. Without it, none is.
   */
  meaning?: (result: unknown) => string;
}

const fingerprints = (r: unknown) => (r as Certificate[]).map((c) => c.fingerprint).join(',');

export const GROUPS = ['keys', 'envelopes', 'layers', 'disk', 'decoders', 'selftest'] as const;
export type Group = (typeof GROUPS)[number];

function str(b: Uint8Array | string): string {
  return typeof b === 'string' ? b : Buffer.from(b).toString('latin1');
}
function u8(b: Uint8Array | string): Uint8Array {
  return typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'latin1')) : b;
}

/** Ranges of a PEM text around its armor lines (the base64 body in between is sampled). */
function pemArmor(bytes: Uint8Array): [number, number][] {
  const text = Buffer.from(bytes).toString('latin1');
  const out: [number, number][] = [];
  for (const m of text.matchAll(/-----(BEGIN|END) [A-Z0-9 ]+-----/g))
    out.push([(m.index ?? 0) - 80, (m.index ?? 0) + m[0].length + 80]);
  return out;
}

export async function loadArtifacts(fx: FuzzFixture, group: Group): Promise<Artifact[]> {
  const f = (name: string) => join(fx.dir, name);
  const read = async (name: string) => new Uint8Array(await readFile(f(name)));
  const at = new Date(fx.at);
  const root = parseCertificates(await read('root.der'))[0] as Certificate;
  const vroot = parseCertificates(await read('vroot.der'))[0] as Certificate;
  const peer = parseCertificates(await read('peer.der'))[0] as Certificate;
  const crl = parseCrl(await read('crl.der'));
  const anchors = [root, vroot];
  const crls: Crl[] = [crl];
  const out: Artifact[] = [];

  if (group === 'keys') {
    const peerDer = await read('peer.der');
    out.push({
      name: 'certificate (peer, DER)',
      signed: true,
      bytes: peerDer,
      mode: 'bytes',
      plan: { allUpTo: 4096, focus: derFraming(peerDer), sample: 800, boundaries: derBoundaries(peerDer) },
      decode: (b) => verifyChain(parseCertificates(u8(b)), { anchors, crls, at, roles: ['peer'] }),
    });
    const rootDer = await read('root.der');
    out.push({
      name: 'certificate (user root as trust anchor, DER)',
      signed: true,
      bytes: rootDer,
      mode: 'bytes',
      plan: { allUpTo: 4096, focus: derFraming(rootDer), sample: 400, boundaries: derBoundaries(rootDer) },
      decode: (b) => verifyChain([peer], { anchors: [...parseCertificates(u8(b)), vroot], crls: [], at }),
    });
    const bundle = await read('peer-bundle.pem');
    out.push({
      name: 'certificate bundle (peer + root, PEM)',
      signed: true,
      bytes: bundle,
      mode: 'bytes',
      plan: { allUpTo: 0, focus: pemArmor(bundle), sample: 800, boundaries: [...pemArmor(bundle).flat()] },
      decode: (b) => {
        const chain = parseCertificates(str(b));
        verifyChain(chain, { anchors, crls, at });
        return chain;
      },
      meaning: fingerprints,
    });
    const crlDer = await read('crl.der');
    out.push({
      name: 'CRL (DER)',
      signed: true,
      bytes: crlDer,
      mode: 'bytes',
      plan: { allUpTo: 4096, focus: derFraming(crlDer), sample: 400, boundaries: derBoundaries(crlDer) },
      decode: (b) => verifyChain([peer], { anchors, crls: [parseCrl(u8(b))], at }),
    });
    const crlText = await read('crl-pem.crl');
    out.push({
      name: 'CRL (PEM file)',
      signed: true,
      bytes: crlText,
      mode: 'file',
      plan: { allUpTo: 0, focus: pemArmor(crlText), sample: 300, boundaries: pemArmor(crlText).flat() },
      decode: async (p) => {
        const { readCrls } = await import('../../keys/index.ts');
        const list = await readCrls(p as string);
        verifyChain([peer], { anchors, crls: list, at });
        return list;
      },
      meaning: (r) => (r as Crl[]).map((c) => Buffer.from(c.der).toString('base64')).join(','),
    });
    const data = await read('data.txt');
    const opChain = parseCertificates(await read('op-chain.pem'));
    const sigFile = await read('data-sig.json');
    out.push({
      name: 'detached signature file (mway keys sign, with chain)',
      signed: true,
      bytes: sigFile,
      mode: 'bytes',
      plan: { allUpTo: 0, focus: jsonFraming(sigFile), sample: 600, boundaries: jsonBoundaries(sigFile) },
      decode: (b) => verifySignatureFile(data, u8(b), { anchors, crls, at }),
    });
    const sigFpr = await read('data-sig-fpr.json');
    out.push({
      name: 'detached signature (fingerprint only)',
      signed: true,
      bytes: sigFpr,
      mode: 'bytes',
      plan: { allUpTo: 4096, focus: jsonFraming(sigFpr), sample: 600, boundaries: jsonBoundaries(sigFpr) },
      decode: (b) => verifyDetached(data, u8(b), { type: 'file', anchors, crls, at, certificates: opChain }),
    });
  }

  if (group === 'envelopes') {
    const kem = await readKemPrivateKey(f('kem.key'));
    const replayDir = join(fx.dir, 'replay');
    await mkdir(replayDir, { recursive: true });
    const replay = new ReplayCache(replayDir);
    await replay.load(at);
    const byType: [EnvelopeType, (b: Uint8Array | string) => unknown][] = [
      [
        'command',
        (b) =>
          checkCommand(u8(b), {
            anchors: [root],
            crls,
            fleet: fx.fleet,
            peerId: fx.peerId,
            peerChain: [peer],
            groups: new Map(),
            replay,
            now: at,
          }),
      ],
      [
        'membership',
        (b) =>
          verifyMembership(parseEnvelope(u8(b)), {
            anchors: [root],
            crls,
            at,
            fleet: fx.fleet,
            peer: fx.peerId,
          }),
      ],
      ['result', (b) => verifyResult(u8(b), { anchors: [root], crls, at })],
      ['status', (b) => verifyStatus(u8(b), { anchors: [root], crls, at })],
      [
        'secret',
        (b) =>
          openSecret(u8(b), {
            kemPrivateKey: kem,
            recipient: peer,
            context: SECRET_CONTEXT,
            anchors: [root],
            crls,
            at,
          }),
      ],
      ['coreos', (b) => verifyEnvelope(u8(b), { type: 'coreos', anchors, crls, at })],
      ['bundle', (b) => verifyEnvelope(u8(b), { type: 'bundle', anchors, crls, at })],
      ['stage1', (b) => verifyEnvelope(u8(b), { type: 'stage1', anchors, crls, at })],
      ['layer', (b) => verifyEnvelope(u8(b), { type: 'layer', anchors, crls, at })],
      ['file', (b) => verifyEnvelope(u8(b), { type: 'file', anchors, crls, at })],
    ];
    for (const [type, decode] of byType) {
      const bytes = await read(`env-${type}.json`);
      out.push({
        name: `envelope: ${type === 'secret' ? 'sealed secret' : type}`,
        signed: true,
        bytes,
        mode: 'bytes',
        plan: { allUpTo: 0, focus: jsonFraming(bytes), sample: 500, boundaries: jsonBoundaries(bytes) },
        decode,
      });
    }
    // The secure config through the agent's own reader (a file, as on the certificate partition).
    const config = await read('env-config.json');
    out.push({
      name: 'envelope: config (agent secure config file)',
      signed: true,
      bytes: config,
      mode: 'file',
      plan: { allUpTo: 0, focus: jsonFraming(config), sample: 500, boundaries: jsonBoundaries(config) },
      decode: (p) => readSecureConfig(p as string, { anchors, crls }),
    });
  }

  if (group === 'layers') {
    const mwl = await read('hello.mwl');
    const layer = await readLayer(f('hello.mwl'));
    const focus: [number, number][] = [];
    const boundaries: number[] = [];
    for (const m of layer.members) {
      focus.push([m.headerOffset, m.offset]);
      boundaries.push(m.headerOffset, m.offset, m.offset + m.size);
      if (m.name === 'layer.json') focus.push([m.offset, m.offset + m.size + 512]);
      if (m.name === 'payload.verity') focus.push([m.offset, m.offset + 512]);
      if (m.name.startsWith('signature.')) {
        const sig = mwl.subarray(m.offset, m.offset + m.size);
        for (const [s, e] of jsonFraming(sig)) focus.push([m.offset + s, m.offset + e]);
        focus.push([m.offset + m.size, m.offset + m.size + 512]);
      }
    }
    // The end-of-archive blocks in full; the zero record padding after them is sampled.
    focus.push([layer.end, layer.end + 1024]);
    out.push({
      name: 'layer (.mwl)',
      signed: true,
      bytes: mwl,
      mode: 'file',
      plan: { allUpTo: 0, focus, sample: 1200, boundaries, quick: 500 },
      decode: (p) => verifyLayer(p as string, { anchors: [vroot], crls: [], at }),
    });
    const image = await read('image.tar');
    const signer = {
      key: await readPrivateKey(f('vendor.key')),
      chain: await readCertificates(f('vendor.pem')),
    };
    out.push({
      name: 'decoder: OCI image archive (docker save) through import-oci',
      signed: false,
      bytes: image,
      mode: 'file',
      plan: { allUpTo: 0, sample: 60, truncations: 12, focus: [[0, 512]], quick: 60 },
      decode: (p, scratch) =>
        importOci({
          archive: p as string,
          ...signer,
          out: join(scratch, 'out.mwl'),
          sourceDateEpoch: 1_700_000_000,
        }),
    });
    const header = mwl.subarray(0, 512);
    out.push({
      name: 'decoder: ustar header',
      signed: false,
      bytes: header,
      mode: 'bytes',
      plan: { allUpTo: 1 << 16 },
      decode: (b) => decodeHeader(Buffer.from(u8(b)), 0),
    });
  }

  if (group === 'disk') {
    const disk = await read('disk.img');
    const g = await readGpt(f('disk.img'));
    const part = (name: string) => {
      const p = g.partitions.find((x) => x.name === name);
      if (p === undefined) throw new Error(`fixture disk has no ${name}`);
      return { offset: Number(p.firstLba) * 512, size: Number(p.sizeBytes), p };
    };
    const data = part('root');
    const hash = part('root-verity');
    const sig = part('root-verity-sig');
    const sigLen = 16384;
    const covered = (i: number) =>
      (i >= 446 && i < 512) ||
      (i >= 512 && i < 34 * 512) ||
      i >= disk.length - 33 * 512 ||
      (i >= data.offset && i < data.offset + fx.disk.dataBlocks * 4096) ||
      (i >= hash.offset && i < hash.offset + fx.disk.hashSize) ||
      (i >= sig.offset && i < sig.offset + sigLen);
    const sigJson = disk.subarray(sig.offset, sig.offset + sigLen);
    const jsonEnd = sigJson.indexOf(0);
    out.push({
      name: 'disk (GPT, verity data and hash, verity-sig)',
      signed: true,
      bytes: disk,
      mode: 'file',
      plan: {
        allUpTo: 0,
        focus: [
          [446, 512],
          [512, 1024],
          [1024, 1024 + 3 * 128],
          [disk.length - 512, disk.length],
          [disk.length - 33 * 512, disk.length - 33 * 512 + 3 * 128],
          [hash.offset, hash.offset + 512],
          ...jsonFraming(sigJson.subarray(0, jsonEnd)).map(
            ([s, e]) => [sig.offset + s, sig.offset + e] as [number, number],
          ),
        ],
        sample: 1500,
        // The verity superblock's UUID (bytes 16-31) is a label: the kernel ignores it and the
        // verifier has nothing to compare it with on a disk (doc/threat-model.md lists it).
        skip: (i) => !covered(i) || (i >= hash.offset + 16 && i < hash.offset + 32),
        boundaries: [
          512,
          1024,
          34 * 512,
          data.offset,
          hash.offset,
          sig.offset,
          disk.length - 512,
          disk.length - 33 * 512,
        ],
        truncations: 24,
        append: false,
        quick: 400,
      },
      decode: async (p, scratch) => {
        const path = p as string;
        const gpt = await readGpt(path);
        const copies = checkGptRedundancy(path);
        for (const e of [copies.primary, copies.backup, copies.protectiveMbr]) if (e !== undefined) throw e;
        const find = (name: string) => {
          const x = gpt.partitions.find((q) => q.name === name);
          if (x === undefined) throw new ImageError('E_LAYOUT_MISSING', `no ${name} partition`);
          return { offset: Number(x.firstLba) * 512, size: Number(x.sizeBytes), p: x };
        };
        const d = find('root');
        const h = find('root-verity');
        const s = find('root-verity-sig');
        const rootHash = `${d.p.uuid}${h.p.uuid}`.replace(/-/g, '');
        await verifyVerity(path, path, rootHash, { hashOffset: h.offset, dataOffset: d.offset });
        const fh = await open(path, 'r');
        try {
          const sigBytes = new Uint8Array(s.size);
          await fh.read(sigBytes, 0, s.size, s.offset);
          verifyVeritySig(decodeVeritySig(sigBytes), { rootHash, anchors, crls, at });
        } finally {
          await fh.close();
        }
        void scratch;
      },
    });
    const sc = await read('secure-config.erofs');
    const scConfig = await read('env-config.json');
    // The file's whole blocks sit contiguously in the image (its tail may be packed inline
    // elsewhere): those bytes are signed; the rest of the image is file system metadata.
    const inFile = Buffer.from(sc).indexOf(Buffer.from(scConfig.subarray(0, 64)));
    let run = 0;
    while (inFile >= 0 && run < scConfig.length && sc[inFile + run] === scConfig[run]) run++;
    const signedLen = Math.floor(run / 4096) * 4096;
    out.push({
      name: 'secure config erofs (the file inside is signed)',
      signed: (i) => inFile >= 0 && i >= inFile && i < inFile + signedLen,
      bytes: sc,
      mode: 'file',
      plan: {
        allUpTo: 0,
        focus: [[1024, 1024 + 128]],
        sample: 250,
        truncations: 16,
        boundaries: [1024, 4096, inFile],
        quick: 60,
      },
      decode: async (p, scratch) => {
        const dir = join(scratch, 'sc');
        await extractErofs(p as string, dir);
        return readSecureConfig(join(dir, 'secure.json'), { anchors, crls }).finally(() =>
          rm(dir, { recursive: true, force: true }),
        );
      },
    });
    const sb = disk.subarray(hash.offset, hash.offset + 512);
    out.push({
      name: 'decoder: verity superblock',
      signed: false,
      bytes: sb,
      mode: 'bytes',
      plan: { allUpTo: 1 << 16 },
      decode: (b) => decodeVeritySuperblock(u8(b)),
    });
  }

  if (group === 'decoders') {
    const cpio = await read('small.cpio');
    out.push({
      name: 'decoder: newc cpio',
      signed: false,
      bytes: cpio,
      mode: 'bytes',
      plan: { allUpTo: 1 << 16 },
      decode: (b) => readCpio(u8(b)),
    });
    const frame = await read('frame.json');
    out.push({
      name: 'decoder: protocol message body',
      signed: false,
      bytes: frame,
      mode: 'bytes',
      plan: { allUpTo: 0, focus: jsonFraming(frame), sample: 400, boundaries: jsonBoundaries(frame) },
      decode: (b) => decodeBody(u8(b)),
    });
    const enroll = await read('enroll.json');
    out.push({
      name: 'decoder: enrollment request',
      signed: true,
      bytes: enroll,
      mode: 'bytes',
      plan: { allUpTo: 0, focus: jsonFraming(enroll), sample: 400, boundaries: jsonBoundaries(enroll) },
      decode: (b) => checkEnrollmentRequest(jsonOrCode(u8(b), 'E_PROTOCOL'), at),
    });
    const agentConfig = await read('agent.json');
    out.push({
      name: 'decoder: agent config file',
      signed: false,
      bytes: agentConfig,
      mode: 'file',
      plan: { allUpTo: 1 << 16 },
      decode: (p) => readAgentConfig(p as string),
    });
    const spec = await read('image.json');
    out.push({
      name: 'decoder: image spec file',
      signed: false,
      bytes: spec,
      mode: 'file',
      plan: { allUpTo: 1 << 16 },
      decode: (p) => loadImageSpec(p as string),
    });
  }
  if (group === 'selftest') {
    // Decoders that misbehave on purpose, so the harness itself is shown to catch each failure.
    const bytes = new TextEncoder().encode('0123456789');
    const plan: CasePlan = { allUpTo: 64, truncations: 0, boundaries: [] };
    const { KeysError } = await import('../../keys/index.ts');
    const { writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const refusing = (b: Uint8Array | string) => {
      if (same(b)) return 'the original';
      throw new KeysError('E_SIG_INVALID', 'refused');
    };
    // True when `b` is the original with byte `at` flipped (and nothing else changed).
    const on = (b: Uint8Array | string, at: number) =>
      u8(b).length === bytes.length && u8(b).every((x, k) => (k === at ? x !== bytes[k] : x === bytes[k]));
    const same = (b: Uint8Array | string) => Buffer.from(u8(b)).equals(Buffer.from(bytes));
    out.push(
      {
        name: 'selftest: hangs on byte 3',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: (b) => (on(b, 3) ? new Promise(() => setInterval(() => {}, 1000)) : refusing(b)),
      },
      {
        name: 'selftest: crashes on byte 4',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: (b) => (on(b, 4) ? JSON.parse('{') : refusing(b)),
      },
      {
        name: 'selftest: accepts byte 5',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: (b) => (on(b, 5) ? 'ok' : refusing(b)),
      },
      {
        name: 'selftest: undocumented code on byte 6',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: (b) => {
          if (on(b, 6)) throw new KeysError('E_NOT_A_DOCUMENTED_CODE' as never, 'x');
          return refusing(b);
        },
      },
      {
        name: 'selftest: leaves a file on byte 7',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: async (b) => {
          if (on(b, 7)) await writeFile(join(tmpdir(), 'left-behind'), 'x');
          return refusing(b);
        },
      },
      {
        name: 'selftest: exits on byte 8',
        signed: true,
        bytes,
        mode: 'bytes',
        plan,
        decode: (b) => (on(b, 8) ? process.exit(3) : refusing(b)),
      },
    );
  }
  return out;
}

/** JSON.parse for decoders that take a parsed value: unparsable text is the caller's own code. */
function jsonOrCode(b: Uint8Array, code: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(b));
  } catch (e) {
    throw Object.assign(new Error(`not JSON: ${(e as Error).message}`), { code, documentedBy: 'caller' });
  }
}

export async function copyInto(src: string, dst: string): Promise<void> {
  await copyFile(src, dst);
}
