// What each `mway-image` verb prints under `result` with --json (doc/cli.md, "Output";
// published in doc/cli-result.schema.json by `npm run schemas`).
import { cliResult, schema } from '../../common/index.ts';

const { any, bool, num, rows, shape, str } = cliResult;
const { v } = schema;

const bundle = shape({
  bundle: str,
  name: str,
  version: str,
  rollbackIndex: num,
  architecture: str,
  rootHash: str,
  coreosBytes: num,
  signer: shape({ subject: str, role: str, fingerprint: str }),
});

export const imageResults: cliResult.VerbResults = {
  'mway-image verity format': shape({
    rootHash: str,
    salt: str,
    uuid: str,
    dataBlocks: num,
    hashOffset: num,
    hashSize: num,
  }),
  'mway-image verity verify': shape({ dataBlocks: num }),
  // Sizes and LBAs are decimal strings: a disk can be larger than a double holds exactly.
  'mway-image gpt show': shape({
    diskGuid: str,
    sizeBytes: str,
    usedBackup: bool,
    partitions: rows(
      shape({
        index: num,
        name: str,
        type: str,
        typeName: v.nullable(str),
        uuid: str,
        firstLba: str,
        lastLba: str,
        sizeBytes: str,
        attributes: str,
        flags: shape({ readOnly: bool, noAuto: bool, growFs: bool }),
      }),
    ),
  }),
  'mway-image run': shape({
    poweredOff: bool,
    timedOut: bool,
    killed: bool,
    exitCode: v.nullable(num),
    durationMs: num,
  }),
  // The disk built, or with --print-spec the resolved spec (doc/image-spec.schema.json).
  'mway-image build': v.union([
    shape({
      disk: str,
      sizeBytes: num,
      durationMs: num,
      name: str,
      version: str,
      kernel: str,
      coreos: shape({ rootHash: str }),
      layers: rows(any),
    }),
    shape({ name: str, version: str }),
  ]),
  'mway-image inspect': shape({ disk: str, diskGuid: str, partitions: rows(any), layout: rows(any) }),
  'mway-image verify': shape({
    ok: v.literal(true),
    disk: str,
    checks: rows(shape({ check: str, ok: bool })),
  }),
  'mway-image spec validate': shape({ file: str, name: str, version: str }),
  'mway-image bundle create': bundle,
  'mway-image bundle verify': bundle,
  'mway-image bundle permit': shape({
    permit: str,
    bundle: str,
    name: str,
    version: str,
    bundleSha256: str,
    expiresAt: str,
  }),
  'mway-image enroll': shape({ disk: str, vars: v.nullable(str) }),
  'mway-image completion': null,
};
