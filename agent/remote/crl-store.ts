// CRLs pushed to a peer (`mway crl push`, action `crl.install`), kept in its writable state
// (`<dataDir>/control/crls/`, agent/core/crl-list.ts pushedCrlDir) beside the read-only ones of the
// certificate partition. A CRL's authority is the root's signature on it, not the command that
// carried it: it must be signed by one of our anchors, and it is refused when a CRL of the same
// issuer already in force is newer (E_CRL_STALE), so nobody can roll a revocation back by
// replaying an old list. One file per issuer; the newest replaces the older atomically.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/index.ts';
import { type Certificate, type Crl, checkCrls, crlPem, parseCrl } from '../../keys/index.ts';
import { ControlError } from '../../control/wire/index.ts';

export interface CrlInstalled {
  issuer: string;
  thisUpdate: string;
  serials: number;
  state: 'installed' | 'unchanged';
}

export async function ensureCrlStore(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/**
 * Checks a pushed CRL against the anchors and the CRLs in force, and stores it in `dir`. The
 * caller reloads its CRL list afterwards (the stored file is one of the directories it reads);
 * the agent reads `dir` again before each layer or update it verifies.
 */
export async function installCrl(o: {
  der: Uint8Array;
  dir: string;
  anchors: readonly Certificate[];
  inForce: readonly Crl[];
}): Promise<CrlInstalled> {
  let crl: Crl;
  try {
    crl = parseCrl(o.der, 'pushed CRL');
    checkCrls([crl], o.anchors);
  } catch (e) {
    throw new ControlError('E_ACTION_ARGS', `Pushed CRL refused: ${(e as Error).message}`, { cause: e });
  }
  const same = o.inForce.filter((c) => c.issuer === crl.issuer);
  const newest = same.reduce<Crl | undefined>(
    (a, c) => (a === undefined || c.thisUpdate > a.thisUpdate ? c : a),
    undefined,
  );
  const info = {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate.toISOString(),
    serials: crl.serials.length,
  };
  if (newest !== undefined && Buffer.from(newest.der).equals(Buffer.from(crl.der)))
    return { ...info, state: 'unchanged' };
  if (newest !== undefined && newest.thisUpdate.getTime() > crl.thisUpdate.getTime()) {
    throw new ControlError(
      'E_CRL_STALE',
      `Pushed CRL of ${crl.issuer} is from ${info.thisUpdate}; the one in force is newer (${newest.thisUpdate.toISOString()})`,
    );
  }
  const dir = await ensureCrlStore(o.dir);
  const name = createHash('sha256').update(crl.issuer).digest('hex').slice(0, 32);
  await writeFileAtomic(join(dir, `${name}.crl`), crlPem(crl), 0o644);
  return { ...info, state: 'installed' };
}
