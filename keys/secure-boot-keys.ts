// UEFI Secure Boot keys (RSA-2048, SHA-256 X.509, what edk2 verifies), made with openssl and
// kept in the same folder as the ML-DSA identity they belong to. The user gets the three the
// firmware needs — PK (owns the platform), KEK (may change db), db (signs stage 1) — and an
// owner GUID for the EFI signature lists; the vendor gets one "kexec" key that signs stage-2
// kernels so that a locked-down kernel accepts them in kexec_file_load (doc/boot.md).
// Classical crypto, because that is all UEFI firmware verifies today (doc/threat-model.md).
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists, requireTool, run } from '../common/index.ts';
import { KeysError } from './errors.ts';

export type SecureBootKeyRole = 'pk' | 'kek' | 'db' | 'kexec';
export const USER_SB_ROLES: readonly SecureBootKeyRole[] = ['pk', 'kek', 'db'];

/** File names of a Secure Boot key in a keys folder: secure-boot-<role>.key / .crt. */
export function secureBootFiles(dir: string, role: SecureBootKeyRole): { key: string; cert: string } {
  return { key: join(dir, `secure-boot-${role}.key`), cert: join(dir, `secure-boot-${role}.crt`) };
}

export const SECURE_BOOT_GUID_FILE = 'secure-boot-guid';

/** Makes the Secure Boot keys for `kind` in `dir` (user: pk, kek, db and the owner GUID; vendor: kexec). */
export async function newSecureBootKeys(o: {
  dir: string;
  kind: 'user' | 'vendor';
  name: string;
  days?: number;
}): Promise<{ role: SecureBootKeyRole; key: string; cert: string; subject: string }[]> {
  if (!/^[A-Za-z0-9 ._-]{1,40}$/.test(o.name))
    throw new KeysError(
      'E_NAME_INVALID',
      `Secure Boot key name ${JSON.stringify(o.name)} is not 1-40 letters, digits, space . _ -`,
    );
  const openssl = await requireTool('openssl');
  const roles: readonly SecureBootKeyRole[] = o.kind === 'user' ? USER_SB_ROLES : ['kexec'];
  // Enrolled keys are not replaceable by a new key of the same name: firmware that trusts the
  // old db certificate would refuse every stage 1 signed after it. Refuse before writing any.
  const present: string[] = [];
  for (const role of roles)
    for (const f of Object.values(secureBootFiles(o.dir, role))) if (await pathExists(f)) present.push(f);
  if (o.kind === 'user' && (await pathExists(join(o.dir, SECURE_BOOT_GUID_FILE))))
    present.push(join(o.dir, SECURE_BOOT_GUID_FILE));
  if (present.length > 0)
    throw new KeysError(
      'E_KEY_EXISTS',
      `Cannot make ${o.kind} Secure Boot keys in ${o.dir}: ${present.join(', ')} already there (move them away to replace them)`,
      { path: o.dir },
    );
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const out = [];
  for (const role of roles) {
    const f = secureBootFiles(o.dir, role);
    const subject = `${o.name} Secure Boot ${role === 'kexec' ? 'kexec' : role.toUpperCase()}`;
    await run(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        String(o.days ?? 3650),
        '-subj',
        `/CN=${subject}`,
        '-keyout',
        f.key,
        '-out',
        f.cert,
      ],
      { timeout: 120_000 },
    );
    out.push({ role, ...f, subject });
  }
  if (o.kind === 'user')
    await writeFile(join(o.dir, SECURE_BOOT_GUID_FILE), `${randomUUID()}\n`, { mode: 0o644 });
  return out;
}
