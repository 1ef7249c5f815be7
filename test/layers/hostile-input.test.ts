// The hostile-input audit's layers/ findings (issue 12): FIFOs hung verify and pack, missing
// files and directories reached E_INTERNAL, pack kept setuid bits and extract (as root) wrote
// setuid-root files, `.wh..` / `.wh...` were taken for whiteouts, and tar framing bytes
// (checksum spelling, header fields, member padding) were not covered by anything.

import { chmodSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { extractFiles, importOci, packLayer, readLayer, verifyLayer } from '../../layers/index.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { layerSource, pki } from './fixture.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

async function packed(t: import('ava').ExecutionContext) {
  const p = await pki();
  const dir = await tempDir(t);
  const out = join(dir, 'l.mwl');
  await packLayer({
    dir: await layerSource(join(dir, 'src')),
    key: p.vendor.key,
    chain: p.vendor.chain,
    out,
    sourceDateEpoch: 1_700_000_000,
  });
  return { p, dir, out, anchors: [p.vendorRoot.cert] };
}

test('verify and inspect refuse a FIFO, a directory and a missing file by type, without hanging', async (t) => {
  const { p, dir, anchors } = await packed(t);
  const fifo = join(dir, 'fifo.mwl');
  await execa('mkfifo', [fifo]);
  t.is(await code(verifyLayer(fifo, { anchors })), 'E_NOT_REGULAR_FILE');
  t.is(await code(readLayer(dir)), 'E_NOT_REGULAR_FILE');
  t.is(await code(readLayer(join(dir, 'missing.mwl'))), 'E_LAYER_READ');
  for (const [args, want] of [
    [['verify', fifo, '--trust', p.vendorRoot.certPath, '--json'], 'E_NOT_REGULAR_FILE'],
    [['verify', dir, '--trust', p.vendorRoot.certPath, '--json'], 'E_NOT_REGULAR_FILE'],
    [['verify', join(dir, 'missing.mwl'), '--trust', p.vendorRoot.certPath, '--json'], 'E_LAYER_READ'],
    [['inspect', fifo, '--json'], 'E_NOT_REGULAR_FILE'],
    [['inspect', dir, '--json'], 'E_NOT_REGULAR_FILE'],
    [['inspect', join(dir, 'missing.mwl'), '--json'], 'E_LAYER_READ'],
    [['verify', join(dir, 'l.mwl'), '--trust', fifo, '--json'], 'E_NOT_REGULAR_FILE'],
    [
      ['verify', join(dir, 'l.mwl'), '--trust', p.vendorRoot.certPath, '--crl', fifo, '--json'],
      'E_NOT_REGULAR_FILE',
    ],
  ] as const) {
    const r = await cli('mway-layer', args, { timeout: 30_000 });
    t.is(r.exitCode, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout, new RegExp(`"code": ?"${want}"`), args.join(' '));
  }
});

test('pack refuses a FIFO as layer.json or policy.cil, and setuid/setgid entries, leaving no output', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const cases: [string, (src: string) => Promise<void>, string][] = [
    [
      'layer.json FIFO',
      async (src) => {
        await import('node:fs/promises').then((f) => f.rm(join(src, 'layer.json')));
        await execa('mkfifo', [join(src, 'layer.json')]);
      },
      'E_NOT_REGULAR_FILE',
    ],
    [
      'policy.cil FIFO',
      (src) => execa('mkfifo', [join(src, 'policy.cil')]).then(() => {}),
      'E_NOT_REGULAR_FILE',
    ],
    ['policy.cil directory', (src) => mkdir(join(src, 'policy.cil')), 'E_NOT_REGULAR_FILE'],
    ['setuid file', (src) => chmod(join(src, 'rootfs/bin/hello'), 0o4755), 'E_TREE_SETUID'],
    ['setgid directory', (src) => chmod(join(src, 'rootfs/etc'), 0o2755), 'E_TREE_SETUID'],
  ];
  for (const [what, spoil, want] of cases) {
    const src = await layerSource(join(dir, what.replace(/\W/g, '-')));
    await spoil(src);
    const out = join(dir, `${what.replace(/\W/g, '-')}.mwl`);
    t.is(await code(packLayer({ dir: src, key: p.vendor.key, chain: p.vendor.chain, out })), want, what);
    t.false(
      await stat(out).then(
        () => true,
        () => false,
      ),
      `${what}: no output`,
    );
  }
  t.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('.')),
    [],
    'no work directories left behind',
  );
});

test('extract removes setuid/setgid bits from a layer that carries them; inspect shows them', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const src = await layerSource(join(dir, 'src'));
  const out = join(dir, 'suid.mwl');
  // A layer made by another tool may carry setuid bits: make one by setting the bit after
  // pack's tree check and before mkfs.erofs reads the tree (pack reports its steps in order).
  await packLayer({
    dir: src,
    key: p.vendor.key,
    chain: p.vendor.chain,
    out,
    sourceDateEpoch: 1,
    progress: {
      step(name) {
        if (name === 'building erofs payload') {
          chmodSync(join(src, 'rootfs/bin/hello'), 0o4755);
          chmodSync(join(src, 'rootfs/etc'), 0o2777);
        }
      },
      bytes() {},
      done() {},
    },
  });
  const x = join(dir, 'x');
  const r = await extractFiles(out, x);
  t.deepEqual(
    r.stripped.map((s) => `${s.path} ${s.mode}`),
    ['/bin/hello 4755', '/etc 2777'],
  );
  t.is((await stat(join(x, 'bin/hello'))).mode & 0o7777, 0o755);
  t.is((await stat(join(x, 'etc'))).mode & 0o7777, 0o777);
  const inspect = await cli('mway-layer', ['inspect', out, '--json']);
  t.is(inspect.exitCode, 0, inspect.stderr);
  const files = jsonOut(inspect.stdout).files as { path: string; mode: string }[];
  t.is(files.find((f) => f.path === '/bin/hello')?.mode, '4755');
});

test('tar framing is canonical: checksum spelling, header fields, mtime and member padding are checked', async (t) => {
  const { dir, out, anchors } = await packed(t);
  const whole = await readFile(out);
  const l = await readLayer(out);
  const lj = l.members[0];
  const sig = l.members.find((m) => m.name === 'signature.1.json');
  t.truthy(lj && sig);
  if (lj === undefined || sig === undefined) return;
  const variants: [string, (b: Buffer) => void][] = [
    // "0012345\0 " → "012345\0\0 ": the same number, another spelling (still a valid checksum).
    [
      'checksum terminator',
      (b) => {
        const h = b.subarray(sig.headerOffset, sig.headerOffset + 512);
        const sum = h.toString('latin1', 148, 154);
        h.write(`${sum}  `, 148, 8, 'latin1');
      },
    ],
    [
      'uname field',
      (b) => {
        const h = b.subarray(sig.headerOffset, sig.headerOffset + 512);
        h.write('root', 265, 'latin1');
        fixSum(h);
      },
    ],
    [
      'mode field',
      (b) => {
        const h = b.subarray(lj.headerOffset, lj.headerOffset + 512);
        h.write('0004755', 100, 'latin1');
        fixSum(h);
      },
    ],
    [
      'mtime',
      (b) => {
        const h = b.subarray(sig.headerOffset, sig.headerOffset + 512);
        h.write('00000000001', 136, 'latin1');
        fixSum(h);
      },
    ],
    [
      'signature padding',
      (b) => {
        b[sig.offset + sig.size] = 0x20;
      },
    ],
  ];
  for (const [what, spoil] of variants) {
    const copy = Buffer.from(whole);
    spoil(copy);
    t.false(copy.equals(whole), what);
    const f = join(dir, `${what.replace(/\W/g, '-')}.mwl`);
    await writeFile(f, copy);
    t.is(await code(verifyLayer(f, { anchors })), 'E_LAYER_TAR', what);
  }
  // GNU tar still lists the real file: the format stays plain ustar.
  const list = await execa('tar', ['-tvf', out]);
  t.regex(list.stdout, /signature\.1\.json/);
});

function fixSum(h: Buffer): void {
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}

test('import-oci refuses the whiteouts .wh.. and .wh... and other .wh..wh. names', async (t) => {
  const dir = await tempDir(t);
  const p = await pki();
  for (const name of ['.wh..', 'sub/.wh...', '.wh..wh.plnk']) {
    const work = join(dir, name.replace(/\W/g, '_'));
    const rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'sub'), { recursive: true });
    await writeFile(join(rootfs, 'sub', 'keep'), 'x');
    await writeFile(join(rootfs, name), '');
    // A docker-save archive: one layer tar holding the whiteout, plus manifest and config.
    await execa('tar', ['-cf', join(work, 'layer.tar'), '-C', rootfs, '.']);
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${await sha(join(work, 'layer.tar'))}`] },
    };
    await writeFile(join(work, 'config.json'), JSON.stringify(config));
    await writeFile(
      join(work, 'manifest.json'),
      JSON.stringify([{ Config: 'config.json', RepoTags: ['x:1.0.0'], Layers: ['layer.tar'] }]),
    );
    await execa('tar', [
      '-cf',
      join(work, 'image.tar'),
      '-C',
      work,
      'manifest.json',
      'config.json',
      'layer.tar',
    ]);
    const out = join(work, 'x.mwl');
    t.is(
      await code(
        importOci({ archive: join(work, 'image.tar'), key: p.vendor.key, chain: p.vendor.chain, out }),
      ),
      'E_OCI_WHITEOUT',
      name,
    );
    t.false(
      await stat(out).then(
        () => true,
        () => false,
      ),
    );
  }
});

async function sha(path: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

test('pack, init and extract name an output that cannot be written, with its code, leaving nothing', async (t) => {
  const { p, dir, out } = await packed(t);
  const src = await layerSource(join(dir, 'src2'));
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  await mkdir(join(dir, 'taken'));
  const pack = (to: string) => packLayer({ dir: src, key: p.vendor.key, chain: p.vendor.chain, out: to });
  const cases: [string, () => Promise<unknown>, string, string][] = [
    ['pack into a directory', () => pack(join(dir, 'taken')), 'E_LAYER_WRITE', 'it is a directory'],
    ['pack under a file', () => pack(join(file, 'l.mwl')), 'E_LAYER_WRITE', 'not a directory'],
    [
      'pack under a missing directory',
      () => pack(join(dir, 'no', 'l.mwl')),
      'E_LAYER_WRITE',
      'does not exist',
    ],
  ];
  for (const [what, run, want, why] of cases) {
    const e = (await run().then(
      () => undefined,
      (x: unknown) => x,
    )) as { code?: string; message?: string } | undefined;
    t.is(e?.code, want, what);
    t.regex(e?.message ?? '', new RegExp(why), what);
  }
  const clis: [string[], string, string][] = [
    [
      ['init', 'x', join(file, 'x')],
      'E_FILE_WRITE',
      `Cannot create layer source directory ${join(file, 'x', 'rootfs')}`,
    ],
    [
      ['extract', out, join(file, 'p.img'), '--image'],
      'E_EXTRACT_WRITE',
      `Cannot write ${join(file, 'p.img')}`,
    ],
  ];
  for (const [args, want, message] of clis) {
    const r = await cli('mway-layer', [...args, '--json'], { timeout: 60_000 });
    t.is(r.exitCode, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const { error } = jsonOut(r.stdout) as { error: { code: string; message: string } };
    t.is(error.code, want, args.join(' '));
    t.true(error.message.startsWith(message), error.message);
  }
  t.deepEqual((await readdir(dir)).sort(), ['file', 'l.mwl', 'src', 'src2', 'taken']);
  t.deepEqual(await readdir(join(dir, 'taken')), []);
});

test('every byte of the payload verity superblock block is bound: the UUID, and zeros after the superblock', async (t) => {
  const { dir, out, anchors } = await packed(t);
  const whole = await readFile(out);
  const l = await readLayer(out);
  const cases: [string, number, RegExp][] = [
    // veritysetup reads the UUID but never checks it; the .mwl derives it from signed fields.
    ['uuid byte', l.verityOffset + 16 + 5, /superblock UUID [0-9a-f]{32} is not the one derived/],
    ['byte after the superblock', l.verityOffset + 512 + 7, /bytes 512-4095 of its block are not zero/],
  ];
  for (const [what, at, why] of cases) {
    const copy = Buffer.from(whole);
    copy[at] = (copy[at] as number) ^ 0x01;
    const f = join(dir, `${what.replace(/\W/g, '-')}.mwl`);
    await writeFile(f, copy);
    // Both with the kernel's check (verity: false reads only the superblock) and the full one.
    for (const verity of [false, true]) {
      const e = (await verifyLayer(f, { anchors, verity }).then(
        () => undefined,
        (x: unknown) => x,
      )) as { code?: string; message?: string } | undefined;
      t.is(e?.code, 'E_VERITY_SUPERBLOCK', `${what}, verity ${verity}`);
      t.regex(e?.message ?? '', why, what);
    }
  }
});
