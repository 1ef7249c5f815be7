// Helpers shared by the `mway-layer` subcommands: keys, chains, anchors and CRLs named on
// the command line, and the JSON shape of a signer.
import { values } from '../../common/index.ts';
import {
  type Certificate,
  type Crl,
  passphraseFromEnv,
  readCertificates,
  readCrls,
  readPrivateKey,
  type SigningKey,
} from '../../keys/index.ts';
import { LayerError } from '../layer-error.ts';

export const keyArgs = {
  key: { type: 'string', description: 'Signing key (PKCS#8 PEM; passphrase from MWAY_KEY_PASSPHRASE)' },
  cert: { type: 'string', description: 'Signer certificate chain (PEM, leaf first)' },
} as const;

export async function loadSigner(
  key: string | undefined,
  cert: string | undefined,
): Promise<{ key: SigningKey; chain: Certificate[] }> {
  if (key === undefined || cert === undefined) {
    throw new LayerError('E_USAGE', 'Give --key KEY and --cert CERT of a vendor or user identity');
  }
  const passphrase = passphraseFromEnv();
  return {
    key: await readPrivateKey(key, passphrase === undefined ? {} : { passphrase }),
    chain: await readCertificates(cert),
  };
}

/** The anchors and CRLs of the repeatable `--trust` and `--crl` flags. */
export async function loadTrust(args: {
  trust?: unknown;
  crl?: unknown;
}): Promise<{ anchors: Certificate[]; crls: Crl[] }> {
  const anchors = (await Promise.all(values(args.trust).map((p) => readCertificates(p)))).flat();
  const crls = (await Promise.all(values(args.crl).map((p) => readCrls(p)))).flat();
  return { anchors, crls };
}

export function signerJson(c: Certificate): Record<string, unknown> {
  return {
    subject: c.subject,
    issuer: c.issuer,
    role: c.role,
    algorithm: c.algorithm,
    fingerprint: c.fingerprint,
    serial: c.serial,
    notAfter: c.notAfter.toISOString(),
  };
}

export function epochArg(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new LayerError('E_EPOCH_INVALID', `--source-date-epoch ${v} is not a non-negative integer`);
  return n;
}
