// Helpers shared by the `mway keys` subcommands: loading keys (env or TTY passphrase),
// certificates, anchors and CRLs named on the command line; human summaries.
import { createInterface } from 'node:readline';
import { readRegularFile } from '../../common/index.ts';
import { readCertificates } from '../certificate.ts';
import { type Crl, readCrls } from '../crl.ts';
import { KeysError } from '../errors.ts';
import { passphraseFromEnv, readPrivateKey } from '../key-file.ts';
import type { Certificate, SigningKey } from '../types.ts';

/** Reads a passphrase from the TTY without echo; undefined when stdin is not a TTY. */
export async function promptPassphrase(prompt: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const muted = rl as unknown as { _writeToOutput: (s: string) => void };
  process.stderr.write(prompt);
  muted._writeToOutput = () => {};
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
}

export async function loadKey(path: string): Promise<SigningKey> {
  let passphrase = passphraseFromEnv();
  // Peek only at a regular file (readPrivateKey reports anything else with its code).
  const head = await readRegularFile(path, { maxBytes: 64 * 1024 }).catch(() => Buffer.alloc(0));
  if (passphrase === undefined && head.toString('utf8').includes('ENCRYPTED PRIVATE KEY')) {
    passphrase = await promptPassphrase(`Passphrase for ${path}: `);
  }
  return readPrivateKey(path, { passphrase });
}

export async function loadCert(path: string): Promise<Certificate[]> {
  return readCertificates(path);
}

export async function loadAnchors(paths: readonly string[]): Promise<Certificate[]> {
  if (paths.length === 0) throw new KeysError('E_USAGE', 'Give at least one --trust ANCHOR certificate');
  return (await Promise.all(paths.map(readCertificates))).flat();
}

export async function loadCrls(paths: readonly string[]): Promise<Crl[]> {
  return (await Promise.all(paths.map(readCrls))).flat();
}

/** A file named on the command line (to sign or check), refused by type before any read. */
export function readInput(path: string, what: string, maxBytes?: number): Promise<Buffer> {
  return readRegularFile(path, {
    what,
    readCode: 'E_FILE_READ',
    ...(maxBytes === undefined ? {} : { maxBytes, tooLargeCode: 'E_TOO_LARGE' }),
    error: (code, message, options) => new KeysError(code, message, options),
  });
}

export function certJson(c: Certificate): Record<string, unknown> {
  const out: Record<string, unknown> = {
    subject: c.subject,
    issuer: c.issuer,
    role: c.role,
    algorithm: c.algorithm,
    serial: c.serial,
    fingerprint: c.fingerprint,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    isCA: c.isCA,
    pathLen: c.pathLen ?? null,
    dnsNames: c.dnsNames,
  };
  if (c.peerId !== undefined) out.peerId = c.peerId;
  if (c.scope !== undefined) out.scope = c.scope;
  if (c.kemPublicKey !== undefined) out.kemPublicKey = `ML-KEM-768 (${c.kemPublicKey.length} bytes)`;
  return out;
}

export function certHuman(c: Certificate): string {
  return Object.entries(certJson(c))
    .map(([k, v]) => `${k.padEnd(12)} ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('\n');
}
