// The boot chain under QEMU (SLOW: TCG with Secure Boot firmware; ~3–8 min a boot on 2 shared
// cores; two guests at a time). One disk is built with Debian's snakeoil Secure Boot key (the
// OVMF_VARS_4M.snakeoil.fd store trusts it, so no enrollment is needed), then each refusal is
// a copy of it with one link changed: the boot must stop at that link with its own message.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripSignature } from '../../bootchain/index.ts';
import { makeVfat, readGpt } from '../../formats/index.ts';
import { INIT_MARKERS } from '../../imagebuild/initramfs-init.ts';
import { STAGE1_MARKERS } from '../../imagebuild/stage1-init.ts';
import { BOOT_MS, boot, chainDisk, copyDisk, flipAt, resignSlotA, slotA, writeAt } from './_qemu-chain.ts';

const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function work(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mway-chain-qemu-'));
  dirs.push(d);
  return d;
}
let out: Promise<string> | undefined;
const built = () => {
  out ??= work().then(async (d) => {
    await chainDisk(d);
    return d;
  });
  return out;
};
const STOP = new RegExp(`${STAGE1_MARKERS.noSlot}|${INIT_MARKERS.bootFailed}|boot stopped|Access Denied`);
const tail = (l: string[]) => l.slice(-25).join('\n');

test('QEMU Secure Boot: the chain boots through every link to boot done, naming each link and signer', async (t) => {
  t.timeout(BOOT_MS + 300_000);
  const d = await built();
  const b = await boot(join(d, 'disk.img'), /milkyway-agent info: boot done:|MILKYWAY/);
  const has = (s: string | RegExp) =>
    b.lines.some((l) => (typeof s === 'string' ? l.includes(s) : s.test(l)));
  // Stage 1 boots `quiet`, so the first kernel's own Secure Boot line is not on the console;
  // stage 1 reads it from dmesg and says so, and the stage-2 kernel prints it again.
  t.true(
    has(new RegExp(`${STAGE1_MARKERS.secureBootOn} firmware verified this stage 1 .*SnakeOil`)),
    tail(b.lines),
  );
  t.true(
    has(
      /slot a: stage 2 milkyway 1\.0\.0 \(rollback index 1\) verified: ML-DSA-65 signature by pinned vendor key "vendor"/,
    ),
  );
  t.true(has(/kexec_file_load accepted the stage-2 kernel/));
  t.true(has(/secureboot: Secure boot enabled/));
  t.true(has(/mway-initramfs: CoreOS milkyway_1\.0\.0 on/));
  t.true(has(/mway-initramfs: certificates on .* verified/));
  t.regex(b.hit ?? '', /boot done:/, tail(b.lines));
});

test('QEMU Secure Boot off: stage 1 still verifies stage 2 with ML-DSA and boots it', async (t) => {
  t.timeout(BOOT_MS + 300_000);
  const d = await built();
  const b = await boot(join(d, 'disk.img'), new RegExp(`${INIT_MARKERS.switching}|MILKYWAY`), {
    secureBoot: false,
  });
  t.true(
    b.lines.some((l) => l.includes(STAGE1_MARKERS.secureBootOff)),
    tail(b.lines),
  );
  t.true(b.lines.some((l) => /slot a: stage 2 .* verified: ML-DSA-65/.test(l)));
  t.regex(b.hit ?? '', /switching root/, tail(b.lines));
});

/** A copy of the good disk changed by `change`, booted until it stops; `expect` must be on the console. */
async function refused(
  t: import('ava').ExecutionContext,
  name: string,
  change: (disk: string, w: string, keys: string) => Promise<void>,
  expect: RegExp,
) {
  t.timeout(BOOT_MS + 600_000);
  const d = await built();
  const w = await work();
  const disk = await copyDisk(join(d, 'disk.img'), w, name);
  await change(disk, w, join(d, 'keys'));
  const b = await boot(disk, STOP);
  t.true(
    b.lines.some((l) => expect.test(l)),
    `${name}: ${tail(b.lines)}`,
  );
  t.false(
    b.lines.some((l) => l.includes('milkyway-agent')),
    'nothing past the refused link ran',
  );
  t.false(b.lines.some((l) => l.includes(INIT_MARKERS.switching)));
}

async function replaceStage1(disk: string, w: string, efi: string): Promise<void> {
  const esp = (await readGpt(disk)).partitions.find((p) => p.name === 'esp');
  if (esp === undefined) throw new Error('no esp');
  const dir = join(w, 'esp');
  await mkdir(join(dir, 'EFI', 'BOOT'), { recursive: true });
  const { copyFile } = await import('node:fs/promises');
  await copyFile(efi, join(dir, 'EFI', 'BOOT', 'BOOTX64.EFI'));
  await makeVfat(dir, join(w, 'esp.img'), { sourceDateEpoch: 0, size: Number(esp.sizeBytes) });
  const { readFile } = await import('node:fs/promises');
  await writeAt(disk, Number(esp.firstLba) * 512, new Uint8Array(await readFile(join(w, 'esp.img'))));
}

test('QEMU refusal: an unsigned stage 1 is refused by the firmware', async (t) => {
  await refused(
    t,
    'unsigned-stage1',
    async (disk, w) => replaceStage1(disk, w, join(await built(), 'stage1.unsigned.efi')),
    /Access Denied/,
  );
});

test('QEMU refusal: a stage 1 signed by a key not in db is refused by the firmware', async (t) => {
  await refused(
    t,
    'wrong-stage1',
    async (disk, w) => {
      const { newSecureBootKeys } = await import('../../keys/index.ts');
      const { sbSign } = await import('../../bootchain/index.ts');
      const [k] = await newSecureBootKeys({ dir: join(w, 'k'), kind: 'vendor', name: 'stranger' });
      if (k === undefined) throw new Error('no key');
      await sbSign({
        input: join(await built(), 'stage1.unsigned.efi'),
        output: join(w, 'wrong.efi'),
        signer: k,
        epoch: 0,
      });
      await replaceStage1(disk, w, join(w, 'wrong.efi'));
    },
    /Access Denied/,
  );
});

for (const [what, at, code] of [
  ['kernel', (o: number) => o + 12288 + 4096 * 100 + 7, 'E_DESC_KERNEL_DIGEST'],
  ['initramfs', (o: number, s: number) => o + s + 4096 * 10 + 3, 'E_DESC_INITRD_DIGEST'],
  ['command line', (o: number) => o + 272 + 5, 'E_DESC_SIGNATURE'],
  ['descriptor', (o: number) => o + 20, 'E_DESC_SIGNATURE'],
] as const) {
  test(`QEMU refusal: a flipped byte in the stage-2 ${what} stops the boot in stage 1 (${code})`, async (t) => {
    await refused(
      t,
      `flip-${what.replace(' ', '-')}`,
      async (disk, w) => {
        const { offset, v } = await slotA(disk, w);
        await flipAt(disk, at(offset, v.descriptor.initrd.offset));
      },
      new RegExp(`MILKYWAY: stage 2 slot a refused: ${code}`),
    );
  });
}

test('QEMU refusal: a descriptor signed by a vendor key stage 1 does not pin (E_DESC_KEY_UNPINNED)', async (t) => {
  await refused(
    t,
    'unpinned',
    async (disk, w) => {
      const { newIdentity, readPrivateKey, readCertificates } = await import('../../keys/index.ts');
      const keys = join(await built(), 'keys');
      const root = await readPrivateKey(join(keys, 'vendor-root.key'));
      const [rootCert] = await readCertificates(join(keys, 'vendor-root.crt'));
      await newIdentity({
        role: 'vendor',
        name: 'other-vendor',
        outDir: w,
        issuerKey: root,
        issuerCert: rootCert,
      });
      await resignSlotA(disk, w, w, (i) => i, 'other-vendor');
    },
    /MILKYWAY: stage 2 slot a refused: E_DESC_KEY_UNPINNED/,
  );
});

test('QEMU refusal: a rollback index below stage 1’s floor (E_DESC_ROLLBACK)', async (t) => {
  await refused(
    t,
    'rollback',
    (disk, w, keys) => resignSlotA(disk, w, keys, (i) => ({ ...i, rollbackIndex: 0n })),
    /MILKYWAY: stage 2 slot a refused: E_DESC_ROLLBACK/,
  );
});

test('QEMU refusal: a stage-2 kernel without the kexec signature is refused by kexec_file_load (E_KEXEC_REFUSED)', async (t) => {
  await refused(
    t,
    'no-kexec-sig',
    async (disk, w, keys) => {
      const { v } = await slotA(disk, w);
      const bare = await stripSignature(v.kernel);
      await resignSlotA(disk, w, keys, (i) => ({ ...i, kernel: bare }));
    },
    /MILKYWAY: stage 2 slot a refused: E_KEXEC_REFUSED/,
  );
});

test('QEMU refusal: a descriptor naming a CoreOS root hash the disk lacks stops the boot in stage 2', async (t) => {
  const other = '5e'.repeat(32);
  await refused(
    t,
    'roothash',
    (disk, w, keys) =>
      resignSlotA(disk, w, keys, (i) => ({
        ...i,
        rootHash: other,
        cmdline: i.cmdline.replace(/mway\.roothash=[0-9a-f]{64}/, `mway.roothash=${other}`),
      })),
    /MILKYWAY: boot failed: no CoreOS partition .* whose GUID matches mway.roothash/,
  );
});
