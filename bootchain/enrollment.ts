// Secure Boot key enrollment (doc/how-to-enroll-secure-boot-keys.md). The user's PK, KEK and
// db become signed EFI variable updates (`.auth`, EFI_VARIABLE_AUTHENTICATION_2) made with
// Debian's efitools: PK self-signed, KEK signed by PK, db — the user's stage-1 certificate and
// the vendor's kexec certificate — signed by KEK. The one-time enrollment medium is an ESP
// whose EFI/BOOT/BOOTX64.EFI is Debian's systemd-boot 252 with `secure-boot-enroll force`:
// booted once on firmware in setup mode, it writes db, KEK and PK from loader/keys/milkyway/
// and reboots with Secure Boot on.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, run } from '../common/index.ts';
import { BootchainError } from './bootchain-error.ts';
import type { SbKey } from './secure-boot.ts';

export const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
export const ENROLL_KEYS_DIR = 'loader/keys/milkyway';

export interface EnrollmentKeys {
  pk: SbKey;
  kek: SbKey;
  /** Certificates for db: the user's stage-1 signer and the vendor's kexec certificate. */
  db: readonly string[];
  /** Owner GUID of the signature lists. */
  guid: string;
}

/** `YYYY-MM-DD HH:MM:SS` for sign-efi-sig-list -t (the authenticated variable's timestamp). */
const stamp = (epoch: number) => new Date(epoch * 1000).toISOString().replace('T', ' ').slice(0, 19);

/** Writes PK.auth, KEK.auth and db.auth (and the .esl lists) into `outDir`. */
export async function makeAuthFiles(
  k: EnrollmentKeys,
  outDir: string,
  epoch: number,
): Promise<Record<'PK' | 'KEK' | 'db', string>> {
  const toEsl = await requireTool('cert-to-efi-sig-list');
  const signEsl = await requireTool('sign-efi-sig-list');
  if (!/^[0-9a-f-]{36}$/.test(k.guid))
    throw new BootchainError('E_SB_KEYS', `Owner GUID ${JSON.stringify(k.guid)} is not a GUID`);
  await mkdir(outDir, { recursive: true });
  const esl = async (name: string, certs: readonly string[]): Promise<string> => {
    const parts: Buffer[] = [];
    for (const [i, c] of certs.entries()) {
      const one = join(outDir, `${name}.${i}.esl`);
      await run(toEsl, ['-g', k.guid, c, one], { timeout: 60_000 });
      parts.push(await readFile(one));
    }
    const out = join(outDir, `${name}.esl`);
    await writeFile(out, Buffer.concat(parts));
    return out;
  };
  const auth = async (name: 'PK' | 'KEK' | 'db', list: string, signer: SbKey): Promise<string> => {
    const out = join(outDir, `${name}.auth`);
    const r = await run(
      signEsl,
      ['-t', stamp(epoch), '-g', k.guid, '-k', signer.key, '-c', signer.cert, name, list, out],
      {
        timeout: 60_000,
        reject: false,
      },
    );
    if (r.exitCode !== 0)
      throw new BootchainError('E_SB_ENROLL', `sign-efi-sig-list ${name} failed: ${r.stderr.trim()}`);
    return out;
  };
  return {
    PK: await auth('PK', await esl('PK', [k.pk.cert]), k.pk),
    KEK: await auth('KEK', await esl('KEK', [k.kek.cert]), k.pk),
    db: await auth('db', await esl('db', k.db), k.kek),
  };
}

/** Fills `espDir` with the enrollment medium: systemd-boot, loader.conf, the three .auth files. */
export async function makeEnrollmentEsp(k: EnrollmentKeys, espDir: string, epoch: number): Promise<void> {
  const keys = join(espDir, ENROLL_KEYS_DIR);
  await mkdir(join(espDir, 'EFI', 'BOOT'), { recursive: true });
  try {
    await copyFile(SYSTEMD_BOOT_EFI, join(espDir, 'EFI', 'BOOT', 'BOOTX64.EFI'));
  } catch (e) {
    throw new BootchainError(
      'E_SB_ENROLL',
      `Cannot read ${SYSTEMD_BOOT_EFI}: install the Debian package systemd-boot-efi`,
      {
        cause: e,
      },
    );
  }
  const files = await makeAuthFiles(k, join(espDir, '.work'), epoch);
  await mkdir(keys, { recursive: true });
  for (const [name, path] of Object.entries(files)) await copyFile(path, join(keys, `${name}.auth`));
  await import('node:fs/promises').then((fs) =>
    fs.rm(join(espDir, '.work'), { recursive: true, force: true }),
  );
  // `force` enrolls without asking (systemd-boot 252 still counts down first); timeout 0 for the menu.
  await writeFile(join(espDir, 'loader', 'loader.conf'), 'timeout 0\nsecure-boot-enroll force\n');
}
