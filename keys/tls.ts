// node:tls options from MilkyWay identity files: TLS 1.3 only, mutual authentication against
// the given anchors; the default key exchange in Node 24 / OpenSSL 3.5 is X25519MLKEM768.
import { readFileSync } from 'node:fs';
import { statSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { errorMessage } from '../common/index.ts';
import { KeysError } from './errors.ts';
import type { Certificate } from './types.ts';

export function tlsContextOptions(o: {
  keyPath: string;
  certPath: string;
  anchors: readonly Certificate[];
  passphrase?: string | undefined;
}): SecureContextOptions & { minVersion: 'TLSv1.3'; maxVersion: 'TLSv1.3' } {
  let key: string;
  let cert: string;
  try {
    const st = statSync(o.keyPath);
    if ((st.mode & 0o077) !== 0) {
      throw new KeysError(
        'E_KEY_PERMISSIONS',
        `Private key ${o.keyPath} is accessible by group or others; run chmod 600 ${o.keyPath}`,
        {
          path: o.keyPath,
        },
      );
    }
    key = readFileSync(o.keyPath, 'utf8');
    cert = readFileSync(o.certPath, 'utf8');
  } catch (e) {
    if (e instanceof KeysError) throw e;
    throw new KeysError('E_KEY_READ', `Cannot read TLS identity: ${errorMessage(e)}`, { cause: e });
  }
  if (o.anchors.length === 0) throw new KeysError('E_CERT_UNTRUSTED', 'TLS needs at least one trust anchor');
  const out: SecureContextOptions & { minVersion: 'TLSv1.3'; maxVersion: 'TLSv1.3' } = {
    key,
    cert,
    ca: o.anchors.map((a) => a.pem),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
  const pass = o.passphrase ?? process.env.MWAY_KEY_PASSPHRASE;
  if (pass !== undefined && pass !== '') out.passphrase = pass;
  return out;
}
