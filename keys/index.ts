// Public API of keys/ (re-exports only): the MilkyWay post-quantum PKI, envelopes, sealed secrets.
export {
  type Backend,
  generateKemKey,
  generateSigningKey,
  publicKeyFromRaw,
  rawPublicKey,
  sign,
  signDeterministic,
  verify,
} from './algorithms.ts';
export { canonicalJson, canonicalText } from './canonical.ts';
export { certificatePem, parseCertificates, readCertificates } from './certificate.ts';
export { checkCrls, type VerifyChainOptions, verifyChain } from './chain.ts';
export { type Crl, crlPem, issueCrl, parseCrl, readCrls } from './crl.ts';
export {
  contextOf,
  parseEnvelope,
  serialize,
  signDetached,
  signEnvelope,
  type VerifyOptions,
  verifyDetached,
  verifyEnvelope,
} from './envelope.ts';
export { KeysError } from './errors.ts';
export { KEYS_CODES, type KeysCode } from './keys-codes.ts';
export { issueCertificate, newIdentity } from './issue.ts';
export { passphraseFromEnv, readKemPrivateKey, readPrivateKey, writePrivateKey } from './key-file.ts';
export { assertMaySign, MAY_ISSUE, MAY_SIGN } from './role-policy.ts';
export {
  newSecureBootKeys,
  SECURE_BOOT_GUID_FILE,
  type SecureBootKeyRole,
  secureBootFiles,
  USER_SB_ROLES,
} from './secure-boot-keys.ts';
export { openSecret, type SealedSecret, sealSecret } from './sealed.ts';
export { MAX_SIGNATURE_FILE, verifySignatureFile } from './signature-file.ts';
export { tlsContextOptions } from './tls.ts';
export type {
  Certificate,
  Envelope,
  EnvelopeType,
  Role,
  Signature,
  SignatureAlgorithm,
  SigningKey,
} from './types.ts';
