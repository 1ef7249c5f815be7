// `mway keys`: the post-quantum PKI on the command line (doc/keys.md).
import { defineCommand } from 'citty';

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
    new: () => import('./new.ts').then((m) => m.default),
    show: () => import('./show.ts').then((m) => m.default),
    verify: () => import('./verify.ts').then((m) => m.default),
    revoke: () => import('./revoke.ts').then((m) => m.default),
    crl: () => import('./crl.ts').then((m) => m.default),
    sign: () => import('./sign.ts').then((m) => m.default),
    'verify-sig': () => import('./verify-sig.ts').then((m) => m.default),
    'secure-boot': () => import('./secure-boot.ts').then((m) => m.default),
  },
});
