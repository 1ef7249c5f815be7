// Whose RSA keys sign the boot chain for UEFI Secure Boot (doc/boot.md): stage 1 with the
// user's db key, the stage-2 kernel with the vendor's kexec key — both from the keys folder
// (made by `mway keys secure-boot`; a generated development PKI gets them too) — or, for QEMU
// tests with Debian's pre-enrolled OVMF_VARS_4M.snakeoil.fd, both with the snakeoil test key.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SbKey } from '../bootchain/index.ts';
import { pathExists, requireTool, run } from '../common/index.ts';
import { newSecureBootKeys, secureBootFiles } from '../keys/index.ts';
import type { BuildContext } from './build-context.ts';
import { ImageError } from './image-error.ts';

export const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
export const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
/** Debian's OVMF variable store with Secure Boot on and the snakeoil key in PK, KEK and db. */
export const SNAKEOIL_VARS = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';

export interface ChainSigners {
  stage1: SbKey & { subject: string };
  kexec: SbKey & { subject: string };
}

async function subjectOf(cert: string): Promise<string> {
  try {
    return new X509Certificate(await readFile(cert)).subject.replaceAll('\n', ', ');
  } catch (e) {
    throw new ImageError(
      'E_KEYS_MISSING',
      `Cannot read the Secure Boot certificate ${cert}: ${(e as Error).message}`,
      {
        path: cert,
        cause: e,
      },
    );
  }
}

/** The signers for the spec's `bootchain.secureBoot`, making dev Secure Boot keys when `generate`. */
export async function chainSigners(
  ctx: BuildContext,
  keysDir: string,
  generate: boolean,
): Promise<ChainSigners> {
  if (ctx.spec.bootchain.secureBoot === 'snakeoil') {
    // The snakeoil key is passphrase-protected ("snakeoil", README.Debian); sbsign wants it clear.
    const key = join(ctx.work, 'snakeoil.key');
    await run(
      await requireTool('openssl'),
      ['rsa', '-in', SNAKEOIL_KEY, '-passin', 'pass:snakeoil', '-out', key],
      {
        timeout: 30_000,
      },
    );
    const s = { key, cert: SNAKEOIL_CERT, subject: await subjectOf(SNAKEOIL_CERT) };
    return { stage1: s, kexec: s };
  }
  const db = secureBootFiles(keysDir, 'db');
  const kexec = secureBootFiles(keysDir, 'kexec');
  const have = async (f: { key: string; cert: string }) =>
    (await pathExists(f.key)) && (await pathExists(f.cert));
  if (generate && !(await have(db))) await newSecureBootKeys({ dir: keysDir, kind: 'user', name: 'user' });
  if (generate && !(await have(kexec)))
    await newSecureBootKeys({ dir: keysDir, kind: 'vendor', name: 'vendor' });
  for (const f of [db, kexec])
    if (!(await have(f)))
      throw new ImageError(
        'E_KEYS_MISSING',
        `Cannot sign the boot chain: ${f.key} / ${f.cert} missing (mway keys secure-boot, or bootchain.secureBoot "snakeoil")`,
        { path: keysDir },
      );
  return {
    stage1: { ...db, subject: await subjectOf(db.cert) },
    kexec: { ...kexec, subject: await subjectOf(kexec.cert) },
  };
}
