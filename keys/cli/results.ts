// What each `mway keys` verb prints under `result` with --json (doc/cli.md, "Output"); the
// operator's table (control/operator/cli/results.ts) lists them under `mway keys …`.
import { cliResult, schema } from '../../common/index.ts';

const { bool, num, opt, rows, shape, str } = cliResult;
const { v } = schema;

/** A certificate as `keys show` and `keys new` print it (keys/cli/shared.ts certJson). */
const certificate = shape({
  subject: str,
  issuer: str,
  role: str,
  algorithm: str,
  serial: str,
  fingerprint: str,
  notBefore: str,
  notAfter: str,
  isCA: bool,
  pathLen: v.nullable(num),
  dnsNames: rows(str),
  peerId: opt(str),
  scope: opt(shape({})),
  kemPublicKey: opt(str),
});

export const keysResults: cliResult.VerbResults = {
  'keys new': shape({ key: str, cert: str, kemKey: opt(str), certificate }),
  // One certificate, or a list when the file holds several.
  'keys show': v.union([certificate, rows(certificate)]),
  'keys verify': shape({ subject: str, role: str, fingerprint: str }),
  'keys revoke': shape({ crl: str, revoked: rows(str) }),
  'keys crl': shape({ crl: str, revoked: rows(str), thisUpdate: str }),
  // An envelope written (--envelope), or a detached signature.
  'keys sign': v.union([
    shape({ envelope: str, type: str }),
    shape({ signature: str, type: str, signer: str }),
  ]),
  'keys verify-sig': shape({ type: str, signer: str, role: str, fingerprint: str }),
  'keys secure-boot': rows(shape({ role: str, key: str, cert: str, subject: str })),
};
