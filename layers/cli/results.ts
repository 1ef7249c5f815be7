// What each `mway-layer` verb prints under `result` with --json (doc/cli.md, "Output";
// published in doc/cli-result.schema.json by `npm run schemas`).
import { cliResult, schema } from '../../common/index.ts';

const { any, bool, num, opt, rows, shape, str } = cliResult;
const { v } = schema;

const sections = { payloadOffset: num, payloadSize: num, verityOffset: num, veritySize: num };

export const layerResults: cliResult.VerbResults = {
  'mway-layer init': shape({ dir: str, manifest: str, rootfs: str }),
  'mway-layer pack': shape({ path: str, name: str, version: str, size: num, rootHash: str, ...sections }),
  'mway-layer sign': shape({ path: str, signatures: num, signer: opt(str) }),
  'mway-layer verify': shape({
    name: str,
    version: str,
    rootHash: str,
    signers: rows(any),
    ...sections,
    fullCheck: bool,
  }),
  'mway-layer inspect': shape({
    path: str,
    size: num,
    manifest: shape({ name: str, version: str, kind: str }),
    signers: rows(any),
    members: rows(shape({ name: str, offset: num, size: num })),
    files: opt(rows(shape({ path: str }))),
  }),
  // The files (default), or with --image the payload image itself.
  'mway-layer extract': v.union([
    shape({ dir: str, files: num, dirs: num, symlinks: num, stripped: rows(any), signaturesChecked: bool }),
    shape({ image: str, size: num, signaturesChecked: bool }),
  ]),
  'mway-layer import-oci': shape({
    path: str,
    format: str,
    name: str,
    version: str,
    architecture: str,
    imageLayers: num,
    service: any,
    rootHash: str,
    source: any,
    dropped: rows(any),
    unmapped: rows(any),
  }),
  'mway-layer import-compose': shape({
    project: str,
    layers: rows(shape({ service: str, layer: str, path: str, version: str, rootHash: str })),
    notes: rows(any),
  }),
  'mway-layer completion': null,
};
