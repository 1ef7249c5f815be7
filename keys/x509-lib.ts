// @peculiar/x509, loaded only where a certificate or a CRL is issued. With reflect-metadata and
// tsyringe it costs about 0.085 s of CPU to load (doc/performance.md, cli): every verb that only
// parses or checks certificates (x509-asn1.ts) would pay it otherwise. Imported once, with the
// OID fix it relies on and Node's WebCrypto as its crypto provider.
import { webcrypto } from 'node:crypto';

export type X509 = typeof import('@peculiar/x509');

/** The CryptoKey type as @peculiar/x509 declares it (no DOM lib here). */
export type X509Key = import('@peculiar/x509').X509CrlCreateParams['signingKey'];

let loading: Promise<X509> | undefined;

export function x509Lib(): Promise<X509> {
  loading ??= (async () => {
    await import('reflect-metadata');
    await import('./asn1-oid-fix.ts');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return loading;
}
