// The CRLs the agent enforces, from the certificate partition, never fewer than the last good
// list. Each `*.crl` file is read strictly and checked against the anchors (issuer known,
// signature good). When every file passes, that set is the list and is kept as the last good
// one (data partition, written atomically). When a file fails, it is reported with its code
// and the list becomes the files that passed plus the last good list: a damaged file can
// add no revocation, but it can no longer remove one either. Revocations only accumulate, so
// the union is always at least as strict as either part. With a failed file and no last good
// list the agent has nothing to fall back on and refuses to start services (fail closed).
import { lstat, mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../common/index.ts';
import { type Certificate, type Crl, checkCrls, crlPem, readCrls } from '../../keys/index.ts';
import { AgentError } from './agent-error.ts';

export interface CrlProblem {
  path: string;
  code: string;
  message: string;
}

export interface CrlList {
  crls: Crl[];
  /** Files that failed, each with its code (E_CRL_MALFORMED, E_NOT_REGULAR_FILE, …). */
  problems: CrlProblem[];
  /** Where the list came from: the partition alone, or the partition's good files plus the last good list. */
  source: 'partition' | 'partition+last-good';
  /** Number of CRLs taken from the last good list. */
  fromLastGood: number;
  /** Number of CRLs in force that came from `mway crl push` (pushedCrlDir). */
  pushed?: number;
}

/** Reads, checks and de-duplicates the CRLs of `files`; a file that fails is a problem, not a skip. */
async function readChecked(
  files: readonly string[],
  anchors: readonly Certificate[],
): Promise<{ good: Crl[]; problems: CrlProblem[] }> {
  const good: Crl[] = [];
  const problems: CrlProblem[] = [];
  for (const path of files) {
    try {
      const list = await readCrls(path);
      checkCrls(list, anchors);
      good.push(...list);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      problems.push({ path, code: err.code ?? 'E_CRL_READ', message: err.message ?? String(e) });
    }
  }
  return { good, problems };
}

function unique(crls: readonly Crl[]): Crl[] {
  const seen = new Map<string, Crl>();
  for (const c of crls) seen.set(Buffer.from(c.der).toString('base64'), c);
  return [...seen.values()];
}

/**
 * The CRL list for `files` (the certificate partition's `*.crl`, any type: a FIFO or directory
 * is refused by type) under `anchors`, falling back on `lastGood` (a PEM bundle) when a file
 * fails. Throws only when a file fails and there is no usable last good list.
 */
export async function loadCrlList(
  files: readonly string[],
  anchors: readonly Certificate[],
  lastGood: string | undefined,
): Promise<CrlList> {
  const { good, problems } = await readChecked(files, anchors);
  if (problems.length === 0) {
    const crls = unique(good);
    if (lastGood !== undefined) await saveLastGood(lastGood, crls);
    return { crls, problems, source: 'partition', fromLastGood: 0 };
  }
  const there =
    lastGood !== undefined &&
    (await lstat(lastGood).then(
      () => true,
      () => false,
    ));
  const previous =
    there && lastGood !== undefined ? await readChecked([lastGood], anchors) : { good: [], problems: [] };
  if (!there || previous.problems.length > 0) {
    const first = problems[0] as CrlProblem;
    throw new AgentError(
      'E_TRUST_CRL',
      `CRL ${first.path} cannot be used (${first.code}: ${first.message}) and there is no last good CRL list to keep: refusing to run without revocations`,
      { path: first.path, details: { problems: [...problems, ...previous.problems] } },
    );
  }
  const crls = unique([...good, ...previous.good]);
  return { crls, problems, source: 'partition+last-good', fromLastGood: previous.good.length };
}

async function saveLastGood(path: string, crls: readonly Crl[]): Promise<void> {
  if (crls.length === 0) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, crls.map(crlPem).join(''), 0o644);
}

/**
 * Where the CRLs pushed with `mway crl push` are kept: the peer link's state on the data
 * partition (`<dataDir>/control/crls`), one file per issuer (agent/remote/crl-store.ts).
 */
export function pushedCrlDir(dataDir: string): string {
  return join(dataDir, 'control', 'crls');
}

/**
 * The pushed CRLs: each `*.crl` of `dir`, read strictly and checked against the anchors like
 * the partition's (its authority is the root's signature, not where it lies). No directory is
 * no pushed CRL; a file that fails is a problem with its code, its revocations are not in force.
 */
export async function readPushedCrls(
  dir: string,
  anchors: readonly Certificate[],
): Promise<{ good: Crl[]; problems: CrlProblem[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.crl')).sort();
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return { good: [], problems: [] };
    return {
      good: [],
      problems: [
        { path: dir, code: 'E_CRL_READ', message: `Cannot read pushed CRLs: ${(e as Error).message}` },
      ],
    };
  }
  return readChecked(
    names.map((n) => join(dir, n)),
    anchors,
  );
}

/** `crls` with `more` added, each list once. */
export function withCrls(crls: readonly Crl[], more: readonly Crl[]): Crl[] {
  return unique([...crls, ...more]);
}

/** Where the last good list lives: the data partition (it must survive a reboot). */
export function lastGoodCrlPath(dataDir: string): string {
  return join(dataDir, 'trust', 'last-good.crl');
}
