// `mway-image enroll`: the one-time Secure Boot enrollment medium for a keys folder (doc/
// how-to-enroll-secure-boot-keys.md) — a GPT disk whose ESP holds systemd-boot with the user's
// PK/KEK/db (db = the user's stage-1 certificate + the vendor's kexec certificate) — and,
// for VMs and tests, booting it once under QEMU on an empty (setup mode) variable store to
// keep the enrolled store.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeEnrollmentEsp } from '../bootchain/index.ts';
import { DPS, makeVfat, writeGpt } from '../formats/index.ts';
import { SECURE_BOOT_GUID_FILE, secureBootFiles } from '../keys/index.ts';
import { ImageError } from './image-error.ts';
import { runQemu } from './qemu-run.ts';

export async function makeEnrollmentDisk(o: {
  keysDir: string;
  out: string;
  epoch: number;
}): Promise<string> {
  const keys = resolve(o.keysDir);
  let guid: string;
  try {
    guid = (await readFile(join(keys, SECURE_BOOT_GUID_FILE), 'utf8')).trim();
  } catch (e) {
    throw new ImageError(
      'E_KEYS_MISSING',
      `No ${SECURE_BOOT_GUID_FILE} in ${keys}: run mway keys secure-boot --kind user`,
      {
        cause: e,
        path: keys,
      },
    );
  }
  const work = `${o.out}.work`;
  await rm(work, { recursive: true, force: true });
  try {
    const esp = join(work, 'esp');
    await mkdir(esp, { recursive: true });
    await makeEnrollmentEsp(
      {
        pk: secureBootFiles(keys, 'pk'),
        kek: secureBootFiles(keys, 'kek'),
        db: [secureBootFiles(keys, 'db').cert, secureBootFiles(keys, 'kexec').cert],
        guid,
      },
      esp,
      o.epoch,
    );
    await makeVfat(esp, join(work, 'esp.img'), { sourceDateEpoch: o.epoch, size: 32 << 20, label: 'ENROLL' });
    await writeGpt(o.out, {
      sizeBytes: 34 << 20,
      partitions: [{ name: 'esp', type: DPS.esp, sizeBytes: 32 << 20, image: join(work, 'esp.img') }],
    });
    return o.out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Boots the enrollment disk once on an empty variable store (setup mode); writes the enrolled store to `varsOut`. */
export async function enrollInQemu(o: {
  disk: string;
  varsOut: string;
  timeoutMs?: number;
}): Promise<{ enrolled: boolean; tail: string[] }> {
  let enrolled = false;
  const q = await runQemu({
    disk: o.disk,
    timeout: o.timeoutMs ?? 900_000,
    serial: 'none',
    secureBoot: true,
    ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
    keepVars: o.varsOut,
    memoryMiB: 512,
    onLine: (l) => {
      if (l.includes('Enrolling secure boot keys')) enrolled = true;
    },
  });
  const r = await q.done;
  // systemd-boot resets the machine after writing PK; -no-reboot turns that into QEMU's exit.
  if (!enrolled || !r.poweredOff)
    throw new ImageError(
      'E_QEMU_FAILED',
      `systemd-boot did not enroll the keys: ${r.tail.slice(-3).join(' | ')}`,
    );
  return { enrolled, tail: r.tail };
}
