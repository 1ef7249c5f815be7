// Private key files: PKCS#8 PEM (RFC 5958), optionally encrypted with a passphrase
// (PBES2, AES-256-CBC), written 0600 atomically; readable-by-others files refused like ssh.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { errorMessage, openRegularFile, writeFileAtomic } from '../common/index.ts';
import { keyAlgorithm, privateKeyFromPem } from './algorithms.ts';
import { KeysError, keysError } from './errors.ts';
import type { SigningKey } from './types.ts';

/** Largest key file we parse (an SLH/ML-DSA-87 PKCS#8 PEM is < 10 KiB). */
const MAX_KEY_FILE = 64 * 1024;

/** Passphrase from MWAY_KEY_PASSPHRASE (never an argv: argv is visible in ps). */
export function passphraseFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = env.MWAY_KEY_PASSPHRASE;
  return p === undefined || p === '' ? undefined : p;
}

export { writeFileAtomic };

/** PKCS#8 PEM of any private KeyObject, encrypted when a passphrase is given. */
export function exportPrivateKeyPem(key: KeyObject, passphrase?: string): string {
  if (passphrase === undefined) return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

export async function writePrivateKey(
  path: string,
  key: SigningKey | KeyObject,
  options: { passphrase?: string | undefined } = {},
): Promise<void> {
  const ko = 'privateKey' in key ? key.privateKey : key;
  await writeFileAtomic(path, exportPrivateKeyPem(ko, options.passphrase), 0o600, {
    what: 'private key',
    error: keysError,
  });
  await chmod(path, 0o600);
}

/** Reads a private KeyObject of any type (signing or KEM), refusing loose permissions. */
export async function readPrivateKeyObject(
  path: string,
  options: { passphrase?: string | undefined } = {},
): Promise<KeyObject> {
  // By type before any read: a FIFO named as the key would block, a directory is a mistake.
  const { fh } = await openRegularFile(path, {
    what: 'private key',
    readCode: 'E_KEY_READ',
    error: (code, message, options) => new KeysError(code, message, options),
  });
  let st: Awaited<ReturnType<typeof fh.stat>>;
  let pem: string;
  try {
    st = await fh.stat();
    if (st.size > MAX_KEY_FILE) {
      throw new KeysError(
        'E_TOO_LARGE',
        `Private key ${path} is ${st.size} bytes, at most ${MAX_KEY_FILE} allowed`,
        { path },
      );
    }
    pem = (await fh.readFile()).toString('utf8');
  } catch (e) {
    if (e instanceof KeysError) throw e;
    throw new KeysError('E_KEY_READ', `Cannot read private key ${path}: ${errorMessage(e)}`, {
      path,
      cause: e,
    });
  } finally {
    await fh.close();
  }
  if ((st.mode & 0o077) !== 0) {
    throw new KeysError(
      'E_KEY_PERMISSIONS',
      `Private key ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
      { path },
    );
  }
  const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (!encrypted && !pem.includes('-----BEGIN PRIVATE KEY-----')) {
    throw new KeysError('E_KEY_MALFORMED', `Private key ${path} is not a PKCS#8 PEM file`, { path });
  }
  const passphrase = options.passphrase ?? passphraseFromEnv();
  if (encrypted && passphrase === undefined) {
    throw new KeysError(
      'E_KEY_PASSPHRASE',
      `Private key ${path} is encrypted; set MWAY_KEY_PASSPHRASE or enter the passphrase at the prompt`,
      { path },
    );
  }
  try {
    return privateKeyFromPem(pem, encrypted ? passphrase : undefined);
  } catch (e) {
    if (encrypted) {
      throw new KeysError('E_KEY_PASSPHRASE', `Cannot decrypt private key ${path}: wrong passphrase`, {
        path,
        cause: e,
      });
    }
    throw new KeysError('E_KEY_MALFORMED', `Cannot decode private key ${path}: ${errorMessage(e)}`, {
      path,
      cause: e,
    });
  }
}

export async function readPrivateKey(
  path: string,
  options: { passphrase?: string | undefined } = {},
): Promise<SigningKey> {
  const privateKey = await readPrivateKeyObject(path, options);
  const algorithm = keyAlgorithm(privateKey);
  return { algorithm, privateKey, publicKey: createPublicKey(privateKey) };
}

/** The ML-KEM-768 private key of a peer (NAME.kem.key). */
export async function readKemPrivateKey(
  path: string,
  options: { passphrase?: string | undefined } = {},
): Promise<KeyObject> {
  const k = await readPrivateKeyObject(path, options);
  if (k.asymmetricKeyType !== 'ml-kem-768') {
    throw new KeysError('E_KEM_KEY', `Key ${path} is ${k.asymmetricKeyType}, expected ML-KEM-768`, { path });
  }
  return k;
}
