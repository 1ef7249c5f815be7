// `mway-image build` of examples/default, then inspect/verify of the disk, cross-checked with
// tools nobody here wrote (sfdisk, veritysetup, debugfs), tampering tests, and a second
// build from the same spec, keys and SOURCE_DATE_EPOCH that must be byte-identical.
// Builds take ~20–40 s each (two per run); no QEMU here (see build-e2e.test.ts).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { STAGE2_HEADER } from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import type { Progress } from '../../common/progress.ts';
import { DPS, readGpt } from '../../formats/index.ts';
import { type BuildResult, buildImage } from '../../imagebuild/build-image.ts';
import { inspectDisk } from '../../imagebuild/disk-inspect.ts';
import { extractPartition, part, readRange } from '../../imagebuild/disk-read.ts';
import { verifyDisk } from '../../imagebuild/disk-verify.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../../imagebuild/image-spec.ts';
import { type Certificate, newIdentity, readCertificates } from '../../keys/index.ts';
import { readLayer } from '../../layers/layer-file.ts';
import { MILKYWAY } from '../../platform/index.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';

const EPOCH = 1_700_000_000;
const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Progress events as the builder reported them: each step with its byte counts in order. */
interface StepRecord {
  name: string;
  bytes: { done: number; total: number }[];
}

let first: Promise<{ out: string; r: BuildResult; anchors: Certificate[]; steps: StepRecord[] }> | undefined;
function built() {
  first ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'mway-build-'));
    dirs.push(out);
    const steps: StepRecord[] = [];
    let finished = 0;
    const progress: Progress = {
      step: (name) => void steps.push({ name, bytes: [] }),
      bytes: (done, total) => void steps.at(-1)?.bytes.push({ done, total }),
      done: () => void finished++,
    };
    const r = await buildImage({
      spec: await loadImageSpec(DEFAULT_SPEC),
      outDir: out,
      sourceDateEpoch: EPOCH,
      progress,
    });
    if (finished !== 1) throw new Error(`progress.done() called ${finished} times, expected once`);
    const anchors = [
      ...(await readCertificates(join(out, 'keys', 'vendor-root.crt'))),
      ...(await readCertificates(join(out, 'keys', 'user-root.crt'))),
    ];
    return { out, r, anchors, steps };
  })();
  return first;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0x01;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

test('buildImage() progress: every step but keys reports bytes that match what it built', async (t) => {
  const { r, steps } = await built();
  const byName = new Map(steps.map((s) => [s.name, s]));
  t.is(byName.size, steps.length, 'step names are unique');
  const last = (name: string): number => {
    const s = byName.get(name);
    if (s === undefined) throw new Error(`no step ${name}; have ${steps.map((x) => x.name).join(', ')}`);
    const b = s.bytes.at(-1);
    if (b === undefined) throw new Error(`step ${name} reported no bytes`);
    return b.done;
  };
  for (const s of steps) {
    if (s.name === 'keys') continue;
    t.true(s.bytes.length > 0, `${s.name} reports bytes`);
    for (const [i, b] of s.bytes.entries()) {
      t.true(b.done > 0 && b.done <= b.total, `${s.name}: ${b.done} of ${b.total}`);
      const prev = s.bytes[i - 1];
      if (prev !== undefined) t.true(b.done >= prev.done, `${s.name} never goes back`);
    }
    const end = s.bytes.at(-1);
    if (end !== undefined) t.is(end.done, end.total, `${s.name} ends at its total`);
  }
  const size = (role: string): number => {
    const p = r.partitions.find((x) => x.role === role);
    if (p === undefined) throw new Error(`no partition ${role}`);
    return p.sizeBytes;
  };
  // erofs output is the CoreOS image; verity hashes all of it (in 2 MiB runs, so several events).
  t.is(last('erofs coreos-a'), r.coreos.sizeBytes);
  t.is(last('verity coreos-a'), r.coreos.sizeBytes);
  t.true((byName.get('verity coreos-a')?.bytes.length ?? 0) > 1, 'verity reports as it hashes');
  t.true(last('erofs coreos-a') <= size('coreos-a'));
  // The certificate image and its appended tree share one partition.
  t.is(last('verity certificates'), last('erofs certificates'));
  t.true(last('erofs certificates') < size('certificates'));
  t.true(last('erofs secure-config') <= size('secure-config'));
  // Writable partitions are exactly the ext4 image the step wrote; so is the ESP.
  for (const role of ['secure-dynamic-config', 'dynamic-config', 'layers', 'data'])
    t.is(last(`ext4 ${role}`), size(role), role);
  t.is(last('vfat esp'), size('esp'));
  // The disk step copies every image the steps above reported, plus the CoreOS hash tree and
  // signature and the certificates' appended tree, each no bigger than its partition.
  const images =
    last('erofs coreos-a') +
    last('erofs certificates') +
    last('erofs secure-config') +
    ['secure-dynamic-config', 'dynamic-config', 'layers', 'data'].reduce((a, x) => a + last(`ext4 ${x}`), 0) +
    last('vfat esp') +
    last('stage 2');
  const slack =
    size('coreos-a-verity') + size('coreos-a-verity-sig') + size('certificates') - last('erofs certificates');
  t.true(last('GPT disk') > images, `${last('GPT disk')} > ${images}`);
  t.true(last('GPT disk') <= images + slack, `${last('GPT disk')} <= ${images + slack}`);
});

test('build: sfdisk reads the GPT with DPS/MilkyWay types and name_version labels', async (t) => {
  const { r } = await built();
  const sf = JSON.parse((await run('sfdisk', ['--json', r.disk], { timeout: 30_000 })).stdout) as {
    partitiontable: { partitions: { name: string; type: string; uuid: string }[] };
  };
  const parts = sf.partitiontable.partitions;
  const find = (name: string) => parts.find((p) => p.name === name);
  t.is(find('esp')?.type.toLowerCase(), DPS.esp);
  t.is(find('milkyway_1.0.0')?.type.toLowerCase(), DPS.root);
  t.is(find('milkyway_1.0.0.verity')?.type.toLowerCase(), DPS.rootVerity);
  t.is(find('milkyway_1.0.0.verity-sig')?.type.toLowerCase(), MILKYWAY.coreosVeritySig);
  t.is(find('layers')?.type.toLowerCase(), MILKYWAY.layers);
  // DPS pairing: the UUIDs spell the root hash the UKI command line carries.
  const uuids = `${find('milkyway_1.0.0')?.uuid}${find('milkyway_1.0.0.verity')?.uuid}`
    .replaceAll('-', '')
    .toLowerCase();
  t.is(uuids, r.coreos.rootHash);
  t.true(r.cmdline.includes(`mway.roothash=${r.coreos.rootHash}`));
  t.is(parts.filter((p) => p.name === '_empty').length, 3);
});

test('build: veritysetup verify accepts CoreOS A with the root hash from the build', async (t) => {
  const { r } = await built();
  const dir = await tempDir(t);
  const g = await readGpt(r.disk);
  const a = g.partitions.find((p) => p.type === DPS.root && p.name !== '_empty');
  const v = g.partitions.find((p) => p.type === DPS.rootVerity && p.name !== '_empty');
  if (a === undefined || v === undefined) return t.fail('no CoreOS A');
  await extractPartition(r.disk, a, join(dir, 'data'));
  await extractPartition(r.disk, v, join(dir, 'hash'));
  const ok = await run('veritysetup', ['verify', join(dir, 'data'), join(dir, 'hash'), r.coreos.rootHash], {
    timeout: 120_000,
    reject: false,
  });
  t.is(ok.exitCode, 0, ok.stderr);
  const wrong = r.coreos.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const bad = await run('veritysetup', ['verify', join(dir, 'data'), join(dir, 'hash'), wrong], {
    timeout: 120_000,
    reject: false,
  });
  t.not(bad.exitCode, 0);
});

test('build: CoreOS A carries SELinux labels from the policy it ships; seinfo reads that policy', async (t) => {
  const { r } = await built();
  t.regex(r.cmdline, /\bsecurity=selinux enforcing=1\b/, 'the default is enforcing');
  const dir = await tempDir(t);
  const a = (await readGpt(r.disk)).partitions.find((p) => p.type === DPS.root && p.name !== '_empty');
  if (a === undefined) return t.fail('no CoreOS A');
  await extractPartition(r.disk, a, join(dir, 'coreos.erofs'));
  // The kernel's own erofs reader, in a private mount namespace: getfattr shows each label
  // as mkfs.erofs stored it, and the policy and its records as CoreOS holds them.
  const mnt = join(dir, 'mnt');
  const script = [
    `mkdir -p ${mnt}`,
    `mount -t erofs -o ro,loop ${join(dir, 'coreos.erofs')} ${mnt}`,
    `for f in /sbin/init /usr/bin/node /usr/bin/secilc /etc/selinux/milkyway/policy.33 /; do printf '%s ' "$f"; getfattr --only-values -n security.selinux "${mnt}$f"; echo; done`,
    `cp ${mnt}/etc/selinux/milkyway/policy.33 ${mnt}/etc/selinux/milkyway/policy.json ${dir}/`,
  ].join(' && ');
  const m = await run('unshare', ['-m', 'sh', '-c', script], { timeout: 120_000, reject: false });
  t.is(m.exitCode, 0, m.stderr);
  const labels = Object.fromEntries(
    m.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1).replace(/\0$/, '')]),
  );
  t.is(labels['/sbin/init'], 'system_u:object_r:milkyway_agent_exec_t:s0');
  for (const f of ['/usr/bin/node', '/usr/bin/secilc', '/etc/selinux/milkyway/policy.33', '/'])
    t.is(labels[f], 'system_u:object_r:milkyway_coreos_file_t:s0', f);
  const info = await run('seinfo', [join(dir, 'policy.33'), '-t'], { timeout: 120_000 });
  t.regex(info.stdout, /\bmway_web_t\b/, 'the preinstalled layer is in the policy');
  t.regex(info.stdout, /\bmilkyway_agent_t\b/);
  const inputs = JSON.parse(await readFile(join(dir, 'policy.json'), 'utf8')) as {
    layers: { name: string }[];
  };
  t.deepEqual(
    inputs.layers.map((l) => l.name),
    ['web'],
  );
  t.is(
    createHash('sha256')
      .update(await readFile(join(dir, 'policy.33')))
      .digest('hex'),
    r.selinux.policySha256,
  );
});

test('verifyDisk() passes every check under the vendor and user roots; inspect agrees', async (t) => {
  const { r, anchors } = await built();
  const v = await verifyDisk(r.disk, { anchors });
  t.true(v.ok, JSON.stringify(v.checks.filter((c) => !c.ok)));
  t.deepEqual(
    v.checks.map((c) => c.check),
    [
      'gpt',
      'gpt-backup',
      'protective-mbr',
      'layout',
      'stage1',
      'stage1-config',
      'stage2:a',
      'cmdline',
      'coreos-verity',
      'coreos-signature',
      'certificates-verity',
      'secure-config',
      'layers',
      'layer:web',
    ],
  );
  const i = await inspectDisk(r.disk);
  t.is(i.coreos?.rootHash, r.coreos.rootHash);
  t.is(i.coreos?.cmdlineRootHash, r.coreos.rootHash);
  t.is(i.coreos?.signature?.signer, 'vendor');
  t.is(i.secureConfig?.signer, 'user');
  t.deepEqual(
    i.layers.map((l) => `${l.name} ${l.version}`),
    ['web 1.0.0'],
  );
  t.deepEqual(i.certificates?.anchors.map((a) => a.role).sort(), ['user-root', 'vendor-root']);
  // Each link of the chain and its signer (doc/boot.md): stage 1, its config, both slots.
  const c = i.chain;
  t.is(c?.stage1?.secureBootSigners.length, 1, 'stage 1 has one Authenticode signer');
  t.is(c?.stage1?.config?.signer, 'user');
  t.is(c?.stage1?.config?.certsRootHash, r.certificates.rootHash);
  t.deepEqual(
    c?.stage1?.config?.pinned.map((k) => `${k.algorithm} ${k.label}`),
    ['ml-dsa-65 vendor'],
  );
  t.deepEqual(
    c?.slots.map((s) => [
      s.slot,
      s.partition,
      s.priority,
      s.successful,
      s.stage2?.version ?? null,
      s.stage2?.signer ?? null,
    ]),
    [
      ['a', 'boot-a', 2, true, '1.0.0', 'vendor'],
      ['b', 'boot-b', 0, false, null, null],
    ],
  );
  t.is(c?.slots[0]?.stage2?.kexecSigners.length, 1, 'the stage-2 kernel is kexec-signed');
});

test('verifyDisk() fails every signature under an unrelated root, the verity trees still hold', async (t) => {
  const { r } = await built();
  const dir = await tempDir(t);
  const other = await newIdentity({ role: 'vendor-root', name: 'other', outDir: dir });
  const v = await verifyDisk(r.disk, { anchors: [other.certificate] });
  t.false(v.ok);
  const failed = v.checks.filter((c) => !c.ok).map((c) => c.check);
  // Without the user root the stage-1 config is unverified, so nothing it pins (stage 2, the
  // certificate partition's root hash) can be checked either: fail closed.
  t.deepEqual(failed, [
    'stage1-config',
    'stage2:a',
    'coreos-signature',
    'certificates-verity',
    'secure-config',
    'layer:web',
  ]);
});

test('a flipped byte in CoreOS A: verify names the partition and the data block; the CLI exits 1', async (t) => {
  const { r, out } = await built();
  const dir = await tempDir(t);
  const disk = join(dir, 'disk.img');
  await run('cp', ['--sparse=always', r.disk, disk], { timeout: 120_000 });
  const g = await readGpt(disk);
  const a = g.partitions.find((p) => p.type === DPS.root && p.name !== '_empty');
  if (a === undefined) return t.fail('no CoreOS A');
  await flipByte(disk, part.offset(a) + 100 * 4096 + 7);
  const cliRun = await cli('mway-image', [
    'verify',
    disk,
    '--trust',
    join(out, 'keys', 'vendor-root.crt'),
    '--trust',
    join(out, 'keys', 'user-root.crt'),
    '--json',
  ]);
  t.is(cliRun.exitCode, 1, cliRun.stderr);
  const f = jsonOut(cliRun.stdout) as {
    ok: false;
    error: { code: string; details: Awaited<ReturnType<typeof verifyDisk>> };
  };
  t.false(f.ok);
  const v = f.error.details;
  const bad = v.checks.filter((c) => !c.ok);
  t.is(f.error.code, String(bad[0]?.code));
  t.is(bad.length, 1);
  t.is(bad[0]?.check, 'coreos-verity');
  t.deepEqual(bad[0]?.partition, { index: a.index, name: 'milkyway_1.0.0' });
  t.like(bad[0]?.details, { area: 'data', block: 100 });
});

test('a disk edited with sgdisk: verify names each partition that left the layout, inspect shows the same', async (t) => {
  const { r, out, anchors } = await built();
  const dir = await tempDir(t);
  const disk = join(dir, 'disk.img');
  await run('cp', ['--sparse=always', r.disk, disk], { timeout: 120_000 });
  const before = await readGpt(disk);
  const dc = before.partitions.find((p) => p.name === 'dynamic-config');
  const data = before.partitions.find((p) => p.name === 'data');
  const sdc = before.partitions.find((p) => p.name === 'secure-dynamic-config');
  if (dc === undefined || data === undefined || sdc === undefined)
    return t.fail('no dynamic-config, data or secure-dynamic-config partition');
  // Found by name: the boot slots (boot-a, boot-b) moved every index after the ESP.
  const extra = Math.max(...before.partitions.map((p) => p.index)) + 1;
  // sgdisk rewrites both headers with good CRCs: only the layout check can see these.
  const sg = (...args: string[]) => run('sgdisk', [...args, disk], { timeout: 60_000 });
  await sg(`--typecode=${data.index}:${DPS.linuxData}`);
  await sg(`--attributes=${sdc.index}:set:60`);
  await sg(`--delete=${dc.index}`);
  await sg(
    `--new=${extra}:${dc.firstLba}:${dc.lastLba}`,
    `--typecode=${extra}:8200`,
    `--change-name=${extra}:swap`,
  );
  const v = await verifyDisk(disk, { anchors });
  t.false(v.ok);
  const bad = v.checks.filter((c) => !c.ok);
  t.true(
    bad.every((c) => c.check === 'layout'),
    JSON.stringify(bad),
  );
  t.deepEqual(
    bad.map((c) => [c.details?.code, c.partition?.index ?? null, c.partition?.name ?? null]).sort(),
    [
      ['E_LAYOUT_ATTRIBUTES', sdc.index, 'secure-dynamic-config'],
      ['E_LAYOUT_EXTRA', extra, 'swap'],
      ['E_LAYOUT_MISSING', null, null],
      ['E_LAYOUT_TYPE', data.index, 'data'],
    ],
  );
  t.regex(
    bad.find((c) => c.details?.code === 'E_LAYOUT_MISSING')?.message ?? '',
    /no dynamic-config partition/,
  );
  const i = await inspectDisk(disk);
  t.deepEqual(i.layout.map((p) => p.code).sort(), bad.map((c) => c.details?.code).sort());
  t.is(i.partitions.find((p) => p.name === 'swap')?.role, null);
  t.is(i.partitions.find((p) => p.name === 'data')?.role, 'data');
  const c = await cli('mway-image', [
    'verify',
    disk,
    '--trust',
    join(out, 'keys', 'vendor-root.crt'),
    '--trust',
    join(out, 'keys', 'user-root.crt'),
  ]);
  t.is(c.exitCode, 1);
  t.regex(c.stdout + c.stderr, new RegExp(`E_LAYOUT_TYPE: partition ${data.index} data has type 0fc63daf-`));
});

test('a flipped byte in the layer payload: verify names the layer, everything else holds', async (t) => {
  const { r, anchors } = await built();
  const dir = await tempDir(t);
  const disk = join(dir, 'disk.img');
  await run('cp', ['--sparse=always', r.disk, disk], { timeout: 120_000 });
  const g = await readGpt(disk);
  const lp = g.partitions.find((p) => p.name === 'layers');
  if (lp === undefined) return t.fail('no layers partition');
  // Where web.mwl's payload sits on the disk: the .mwl's payload offset, through ext4's block map (debugfs).
  const img = await extractPartition(disk, lp, join(dir, 'layers.img'));
  await run('debugfs', ['-R', `dump /web.mwl ${join(dir, 'web.mwl')}`, img], { timeout: 60_000 });
  const layer = await readLayer(join(dir, 'web.mwl'));
  const target = layer.payloadOffset + 5;
  const bmap = await run('debugfs', ['-R', `bmap /web.mwl ${Math.floor(target / 4096)}`, img], {
    timeout: 60_000,
  });
  const physical = Number(bmap.stdout.trim().split('\n').pop());
  t.true(physical > 0, bmap.stdout);
  await flipByte(disk, part.offset(lp) + physical * 4096 + (target % 4096));
  const v = await verifyDisk(disk, { anchors });
  const bad = v.checks.filter((c) => !c.ok);
  t.deepEqual(
    bad.map((c) => c.check),
    ['layer:web'],
  );
  t.regex(bad[0]?.message ?? '', /E_/);
});

test('verify refuses a cut disk, a damaged backup or primary GPT, a stage-2 descriptor naming another root and a damaged secure-config erofs, each with its code', async (t) => {
  const { r, anchors } = await built();
  const dir = await tempDir(t);
  const g = await readGpt(r.disk);
  const esp = g.partitions.find((p) => p.type === DPS.esp);
  const sc = g.partitions.find((p) => p.name === 'secure-config');
  if (esp === undefined || sc === undefined) return t.fail('no ESP or secure-config partition');
  const size = (await import('node:fs/promises').then((f) => f.stat(r.disk))).size;
  const poke = async (disk: string, at: number, bytes: Buffer) => {
    const fh = await open(disk, 'r+');
    try {
      await fh.write(bytes, 0, bytes.length, at);
    } finally {
      await fh.close();
    }
  };
  // With the chain the CoreOS root hash is in slot a's stage-2 descriptor (doc/stage2-format.md),
  // no longer on the ESP's command line: its first byte, found through the field table.
  const bootA = g.partitions.find((p) => p.name === 'boot-a');
  const field = STAGE2_HEADER.fields.find((f) => f.name === 'rootHash');
  if (bootA === undefined || field === undefined) return t.fail('no boot-a or no rootHash field');
  const digit = part.offset(bootA) + field.offset;
  const cases: [string, (disk: string) => Promise<void>, Record<string, string>][] = [
    [
      'cut by 512 bytes',
      (d) => import('node:fs/promises').then((f) => f.truncate(d, size - 512)),
      { 'gpt-backup': 'E_GPT_BACKUP', 'protective-mbr': 'E_GPT_PMBR' },
    ],
    [
      'backup header overwritten',
      (d) => poke(d, size - 512, Buffer.alloc(512, 0x5a)),
      { 'gpt-backup': 'E_GPT_BACKUP' },
    ],
    // A byte of the disk GUID (whatever it is, it changes).
    [
      'primary header damaged',
      (d) => poke(d, 512 + 60, Buffer.from([(readRange(r.disk, 572, 1)[0] as number) ^ 0x55])),
      { gpt: 'E_GPT_HEADER_CRC' },
    ],
    ['protective MBR cleared', (d) => poke(d, 446, Buffer.alloc(66)), { 'protective-mbr': 'E_GPT_PMBR' }],
    [
      'the stage-2 descriptor names another root hash',
      (d) => poke(d, digit, Buffer.from([(readRange(r.disk, digit, 1)[0] as number) ^ 0x01])),
      // The ML-DSA signature no longer holds, and the raw field names a root CoreOS lacks.
      { 'stage2:a': 'E_DESC_SIGNATURE', cmdline: 'E_CMDLINE_ROOT' },
    ],
    [
      'secure-config erofs data damaged',
      (d) => poke(d, part.offset(sc) + 4096, Buffer.alloc(8192, 0xa5)),
      { 'secure-config': 'E_ENVELOPE_MALFORMED' },
    ],
    // The erofs directory entry of secure.json renamed: the raw ENOENT of the audit.
    [
      'secure-config erofs names no secure.json',
      async (d) => {
        const i = Buffer.from(readRange(r.disk, part.offset(sc), part.size(sc))).indexOf('secure.json');
        if (i < 0) throw new Error('no directory entry found');
        await poke(d, part.offset(sc) + i, Buffer.from('S'));
      },
      { 'secure-config': 'E_SECURE_CONFIG_FS' },
    ],
  ];
  for (const [what, spoil, want] of cases) {
    const disk = join(dir, 'disk.img');
    await run('cp', ['--sparse=always', r.disk, disk], { timeout: 120_000 });
    await spoil(disk);
    const v = await verifyDisk(disk, { anchors });
    t.false(v.ok, what);
    const bad = Object.fromEntries(v.checks.filter((c) => !c.ok).map((c) => [c.check, c.code]));
    for (const [check, code] of Object.entries(want)) t.is(bad[check], code, `${what}: ${check}`);
    t.false(Object.values(bad).includes('E_INTERNAL'), `${what}: ${JSON.stringify(bad)}`);
    t.true(
      v.checks.filter((c) => !c.ok).every((c) => typeof c.code === 'string'),
      what,
    );
  }
});

test('the same spec, keys and SOURCE_DATE_EPOCH build a byte-identical disk (mway-image build --json)', async (t) => {
  const { r, out } = await built();
  const again = await tempDir(t, 'mway-build-again-');
  const c = await cli('mway-image', ['build', '-o', again, '--keys', join(out, 'keys'), '--json'], {
    env: { SOURCE_DATE_EPOCH: String(EPOCH) },
    timeout: 600_000,
  });
  t.is(c.exitCode, 0, c.stderr);
  const r2 = jsonOut(c.stdout) as BuildResult;
  t.is(r2.coreos.rootHash, r.coreos.rootHash);
  t.is(r2.sizeBytes, r.sizeBytes);
  t.false(r2.keysGenerated);
  t.is(await sha256(r2.disk), await sha256(r.disk));
});

test('mway-image inspect --json reports the layout, root hashes and signers', async (t) => {
  const { r } = await built();
  const c = await cli('mway-image', ['inspect', r.disk, '--json']);
  t.is(c.exitCode, 0, c.stderr);
  const i = jsonOut(c.stdout) as Awaited<ReturnType<typeof inspectDisk>>;
  t.deepEqual(
    i.partitions.map((p) => p.role),
    r.partitions.map((p) => p.role),
  );
  t.is(i.partitions.find((p) => p.role === 'coreos-a')?.filesystem, 'erofs');
  t.is(i.partitions.find((p) => p.role === 'esp')?.filesystem, 'vfat');
  t.is(i.certificates?.rootHash, r.certificates.rootHash);
  t.is(i.coreos?.rootHash, r.coreos.rootHash);
});

test('mway-image build refuses a spec with a bad key, naming it, and writes no disk', async (t) => {
  const dir = await tempDir(t);
  const spec = join(dir, 'image.json');
  await copyFile(DEFAULT_SPEC, spec);
  const { writeFile, readFile, access } = await import('node:fs/promises');
  const j = JSON.parse(await readFile(spec, 'utf8'));
  j.partitions = { data: 'big' };
  await writeFile(spec, JSON.stringify(j));
  const r = await cli('mway-image', ['build', spec, '-o', join(dir, 'out'), '--json']);
  t.is(r.exitCode, 1);
  t.regex(r.stdout + r.stderr, /partitions\.data/);
  t.regex(r.stdout + r.stderr, /E_SPEC_INVALID/);
  await t.throwsAsync(access(join(dir, 'out', 'disk.img')));
});

test('mway-image build refuses partitions.coreos smaller than CoreOS, naming the key, and writes no disk', async (t) => {
  const { out } = await built();
  const dir = await tempDir(t);
  const { writeFile, readFile, access } = await import('node:fs/promises');
  const j = JSON.parse(await readFile(DEFAULT_SPEC, 'utf8'));
  j.layers = j.layers.map((l: string) => join(DEFAULT_SPEC, '..', l));
  j.partitions = { ...j.partitions, coreos: 16 };
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify(j));
  const r = await cli(
    'mway-image',
    ['build', spec, '-o', join(dir, 'out'), '--keys', join(out, 'keys'), '--json'],
    {
      timeout: 600_000,
    },
  );
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  t.regex(r.stdout + r.stderr, /E_SPEC_INVALID/);
  t.regex(r.stdout + r.stderr, /CoreOS is \d+ bytes; partitions\.coreos \(16 MiB\) is too small/);
  await t.throwsAsync(access(join(dir, 'out', 'disk.img')));
});

test('a spec with peerIdentity gets a read-only peer-identity partition holding those files', async (t) => {
  const { out } = await built();
  const dir = await tempDir(t);
  const { writeFile, mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'id'));
  await writeFile(join(dir, 'id', 'peer.crt'), 'not really a certificate\n');
  const spec = { ...(await loadImageSpec(DEFAULT_SPEC)), peerIdentity: join(dir, 'id') };
  const r = await buildImage({
    spec,
    outDir: join(dir, 'out'),
    keysDir: join(out, 'keys'),
    sourceDateEpoch: EPOCH,
  });
  const g = await readGpt(r.disk);
  const p = g.partitions.find((x) => x.name === 'peer-identity');
  if (p === undefined) return t.fail('no peer-identity partition');
  t.is(p.type, MILKYWAY.peerIdentity);
  t.true(p.flags.readOnly);
  const img = await extractPartition(r.disk, p, join(dir, 'peer.img'));
  const ls = await run('debugfs', ['-R', 'cat /peer.crt', img], { timeout: 60_000 });
  t.is(ls.stdout, 'not really a certificate\n');
});
