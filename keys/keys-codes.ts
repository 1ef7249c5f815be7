// The codes of KeysError (keys/errors.ts): the table types its `code` and generates
// doc/errors-keys.md (npm run docs:errors).
import { defineCodes } from '../common/index.ts';

export const KEYS_CODES = defineCodes(
  {
    part: 'keys',
    source: 'keys/keys-codes.ts',
    errorClasses: ['KeysError'],
    title: 'keys/ error codes',
    intro: `Every failure in \`keys/\` is a \`KeysError\` with one of these stable codes. CLIs print
\`mway: CODE: message\` on one line; \`mway keys verify\` / \`verify-sig\` print
\`invalid: CODE: message\` (or \`{ok: false, error: {code, message}}\` with \`--json\`) and exit 1.`,
  },
  {
    Codes: {
      E_ALG_UNKNOWN:
        'algorithm name/OID is not ML-DSA-44/65/87 or SLH-DSA-SHA2-128s (key, certificate, `--alg`, signature `alg`)',
      E_ALG_UNSUPPORTED:
        "known algorithm that cannot do this here: certificates with SLH-DSA (Node's WebCrypto has no SLH-DSA, so @peculiar/x509 cannot sign with it)",
      E_CANONICAL: 'a value cannot be encoded as RFC 8785 JSON',
      E_CONTEXT_TOO_LONG: 'context string over 255 bytes (or empty sealed-secret context)',
      E_KEY_READ: 'private key file cannot be read',
      E_KEY_PERMISSIONS: 'private key file readable/writable by group or others (like ssh); `chmod 600`',
      E_KEY_MALFORMED: 'not a PKCS#8 PEM private key',
      E_KEY_PASSPHRASE: 'encrypted key without a passphrase, or a wrong passphrase',
      E_KEY_MISMATCH: 'signing key does not belong to the given certificate',
      E_KEY_EXISTS:
        '`secure-boot`: the keys folder already holds Secure Boot keys of that kind (never overwritten: enrolled firmware trusts the old ones)',
      E_KEM_KEY: 'missing/invalid ML-KEM-768 key (recipient has no KEM key, wrong key type/length)',
      E_CERT_READ: 'certificate file cannot be read',
      E_FILE_READ:
        'a file given to `mway keys sign` / `verify-sig` (the data or the signature) cannot be read',
      E_NOT_REGULAR_FILE:
        'a key, certificate, CRL, data or signature path is a FIFO, directory, device or socket: refused by type before any read',
      E_CERT_MALFORMED:
        'bad PEM (armor not matching, text outside blocks, no block), DER that is not strict (trailing bytes, long length forms), undecodable fields',
      E_CERT_ISSUE: '@peculiar/x509 failed to issue',
      E_ISSUER_REQUIRED: 'a non-root without issuer, or a root with one',
      E_ISSUER_MISMATCH: 'issuer key does not belong to the issuer certificate',
      E_ROLE_UNKNOWN: '`new` / `verify --role`: a role that is not in the role table',
      E_NAME_INVALID: '`new`: a name that is not 1-64 of `A-Z a-z 0-9 . _ -` starting alphanumeric',
      E_DAYS_INVALID: '`new`: validity not a whole number of days in 1..36500',
      E_SCOPE_REQUIRED: '`new`: an operator certificate without `--groups` and `--actions`',
      E_CHAIN_EMPTY: 'no certificate in the chain',
      E_CHAIN_TOO_DEEP: 'path longer than 4 certificates',
      E_CHAIN_MISMATCH:
        'a certificate carried in the chain is not the one the path uses (an issuer copy differing from its trust anchor, or beyond the anchor)',
      E_CERT_UNTRUSTED: 'chain does not lead to any given trust anchor',
      E_CERT_EXPIRED: 'after notAfter at the checked time',
      E_CERT_NOT_YET_VALID: 'before notBefore at the checked time',
      E_CERT_NOT_CA: 'an issuer without BasicConstraints CA',
      E_CERT_SIGNATURE:
        "certificate signature does not verify with its issuer's key, or a self-signed trust anchor's own signature does not verify",
      E_CERT_PATHLEN: 'more CA certificates below an issuer than its pathLen allows',
      E_CERT_ROLE: 'issuer role may not issue the subject role, or the leaf is not of the required role',
      E_CERT_REVOKED: 'serial listed in a CRL signed by the issuer',
      E_CRL_READ: 'CRL file cannot be read (never skipped)',
      E_CRL_MALFORMED:
        'CRL is damaged: bad armor, a file with no CRL, not strict DER, undecodable (never skipped)',
      E_CRL_ISSUER_UNKNOWN:
        "a CRL's issuer is none of the trust anchors given (damaged name, or a CRL of another root)",
      E_CRL_SIGNATURE: 'a CRL naming an anchor is not signed by it',
      E_ROLE_MAY_NOT_SIGN: "the signer's role may not sign this envelope type (role table)",
      E_ENVELOPE_MALFORMED:
        'envelope/signature not the documented shape (JSON, fields, canonical base64, time, fingerprint)',
      E_ENVELOPE_NOT_CANONICAL:
        'envelope, detached signature or signature-file bytes are not their RFC 8785 form: the bytes around the signed values must be canonical too',
      E_ENVELOPE_TYPE: 'unknown type, or not the type the verifier asked for',
      E_SIGNER_UNKNOWN: 'fingerprint-only signature whose certificate was not supplied',
      E_SIG_INVALID:
        'the ML-DSA/SLH-DSA signature does not verify (tampered byte, other context/type, other key)',
      E_SEALED_MALFORMED: 'sealed secret payload not the documented shape',
      E_SECRET_RECIPIENT: 'sealed to another certificate',
      E_SECRET_CONTEXT: 'sealed for another context',
      E_SECRET_DECRYPT: 'AES-GCM fails: KEM private key does not match the recipient certificate',
      E_TOO_LARGE:
        'size caps: certificate DER > 64 KiB, > 8 certificates, envelope > 16 MiB, key file > 64 KiB, CRL > 4 MiB, secret > 1 MiB',
      E_USAGE: { meaning: 'missing `--trust` etc.', exit: 2 },
    },
  },
);

export type KeysCode = keyof typeof KEYS_CODES.codes;
