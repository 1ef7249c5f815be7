// `mway keys`: the post-quantum PKI on the command line (doc/keys.md).
import { defineCommand } from 'citty';
import { lazy } from '../../common/index.ts';

// Node marks WebCrypto ML-DSA (used for X.509 issuance) experimental; that warning is noise
// on a CLI's stderr, so drop exactly that one.
const emit = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (/Web Crypto API algorithm is an experimental feature/.test(text)) return;
  (emit as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

export default defineCommand({
  meta: { name: 'keys', description: 'Post-quantum keys, certificates, CRLs and signatures' },
  subCommands: {
    new: lazy('Create NAME.key and NAME.crt (roots are self-signed; peers also get NAME.kem.key)', () =>
      import('./new.ts').then((m) => m.default),
    ),
    show: lazy('Show a certificate (PEM bundle or DER)', () => import('./show.ts').then((m) => m.default)),
    verify: lazy('Verify a certificate chain against trust anchors', () =>
      import('./verify.ts').then((m) => m.default),
    ),
    revoke: lazy('Revoke a certificate: create or extend the issuer CRL', () =>
      import('./revoke.ts').then((m) => m.default),
    ),
    crl: lazy("Create (or renew) an issuer's CRL without revoking anything new", () =>
      import('./crl.ts').then((m) => m.default),
    ),
    sign: lazy('Sign FILE; writes a detached signature {v,type,signature}', () =>
      import('./sign.ts').then((m) => m.default),
    ),
    'verify-sig': lazy('Verify a detached signature made by `mway keys sign`', () =>
      import('./verify-sig.ts').then((m) => m.default),
    ),
    'secure-boot': lazy(
      'Create UEFI Secure Boot RSA keys in DIR (user: PK, KEK, db; vendor: the stage-2 kexec key)',
      () => import('./secure-boot.ts').then((m) => m.default),
    ),
  },
});
