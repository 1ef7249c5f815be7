// What each `milkywaysrvd` verb prints under `result` with --json (doc/cli.md, "Output";
// published in doc/cli-result.schema.json by `npm run schemas`).
import { cliResult, schema } from '../../../common/index.ts';

const { any, bool, num, opt, rows, shape, str } = cliResult;
const { v } = schema;

/** `serve`'s one line once it listens (its logs go to stderr). */
const listening = shape({
  listening: str,
  fingerprint: str,
  database: str,
  mdns: bool,
  health: v.nullable(str),
});

export const brokerResults: cliResult.VerbResults = {
  milkywaysrvd: listening,
  'milkywaysrvd serve': listening,
  // The entries; with --verify, the chain's report.
  'milkywaysrvd audit': v.union([
    shape({ entries: rows(shape({ seq: num, time: str, kind: str, actor: str, hash: str })) }),
    shape({ entries: num, envelopesVerified: num, head: str }),
  ]),
  'milkywaysrvd check-config': shape({
    config: str,
    listen: str,
    database: str,
    certificate: shape({ subject: str, fingerprint: str, notAfter: str }),
    anchors: num,
    crls: num,
    mdns: bool,
    health: v.nullable(str),
  }),
  'milkywaysrvd nats-user': shape({ seed: str, publicKey: str, binding: opt(str) }),
  // The authorization block (--out: the file written and how many users it has).
  'milkywaysrvd nats-authorization': v.union([shape({ out: str, users: num }), shape({ users: rows(any) })]),
  'milkywaysrvd completion': null,
};
