// The codes of LayerError (layers/layer-error.ts): the table types its `code` and
// generates doc/errors-layers.md (npm run docs:errors).
import { defineCodes } from '../common/index.ts';

export const LAYER_CODES = defineCodes(
  {
    part: 'layers',
    source: 'layers/layer-codes.ts',
    errorClasses: ['LayerError'],
    title: 'layers/ error codes',
    intro: `Every failure in \`layers/\` is a \`LayerError\` (layers/layer-error.ts) with one of these stable
codes. \`mway-layer\` prints \`mway-layer: CODE: message\` on one line (or
\`{"ok":false,"error":{code,message,path,details}}\` with \`--json\`) and exits 1; usage errors
exit 2. \`mway-layer verify\` prints \`invalid: CODE: message\` (or \`{"ok":false,"error":{code,…}}\`) and
exits 1. Manifest errors carry \`details.field\`, the offending field path
(\`services[1].restart.policy\`); structural errors carry \`details.member\`. Errors from keys/
(\`E_SIG_INVALID\`, \`E_CERT_UNTRUSTED\`, \`E_CERT_EXPIRED\`, \`E_CERT_REVOKED\`,
\`E_ROLE_MAY_NOT_SIGN\`, \`E_ENVELOPE_MALFORMED\`, \`E_KEY_*\`, …; doc/errors-keys.md) and from
formats/ (\`E_VERITY_*\`, doc/errors-formats.md) pass through unchanged, and so do common/'s tool errors
(\`E_TOOL_MISSING\` naming the Debian package, \`E_TOOL_FAILED\`, \`E_TOOL_TIMEOUT\`; e.g. from
mkfs.erofs).`,
  },
  {
    Manifest: {
      E_LAYER_FORMAT: {
        meaning:
          'layer.json is not layer format 2 (`details.format` names the version it has; format 1 bound a payload SHA-256 this reader no longer checks)',
        fix: 'repack the layer from its source directory with `mway-layer pack`',
      },
      E_MANIFEST_INVALID:
        'layer.json does not match doc/layer-manifest.schema.json; `details.field` names the field',
      E_MANIFEST_JSON:
        'layer.json is not UTF-8 JSON, or not one JSON line followed by space padding and `\\n`',
      E_MANIFEST_NOT_CANONICAL:
        'the manifest in a .mwl is not RFC 8785 canonical JSON (what the signatures cover)',
      E_MANIFEST_TOO_LARGE: 'manifest over 1 MiB (source or packed)',
    },
    'The .mwl file (readLayer / verifyLayer)': {
      E_LAYER_READ: 'the file cannot be opened or read',
      E_NOT_REGULAR_FILE:
        'the .mwl (or a pack input, trust anchor, CRL) is a FIFO, directory, device or socket: refused by type before any read',
      E_LAYER_TAR:
        'a tar header is not the canonical one our writer makes (checksum spelling, mode, owner, magic, mtime other than `created`), or member padding is not zero',
      E_LAYER_TRUNCATED: 'the file ends inside a header or member, or lacks the end-of-archive marker',
      E_LAYER_TRAILING: 'non-zero bytes (or more than 10 KiB) after the end-of-archive marker',
      E_LAYER_PATH: 'a member name is a path (absolute, `..`, subdirectory)',
      E_LAYER_MEMBER_TYPE: 'a member is not a regular file (symlink, hard link, device, …)',
      E_LAYER_MEMBER_EXTRA:
        'an unknown member, more than 8 signatures, or policy.cil the manifest does not bind',
      E_LAYER_MEMBER_MISSING:
        'layer.json, payload.erofs, payload.verity, a signature number, or a bound policy.cil is missing',
      E_LAYER_MEMBER_DUPLICATE: 'a member name appears twice',
      E_LAYER_MEMBER_ORDER:
        'members not in the order layer.json, payload.erofs, payload.verity, [policy.cil], signature.1.json …',
      E_LAYER_MEMBER_SIZE:
        'a member over its cap (policy 4 MiB, signature 256 KiB) or not the size the manifest binds',
      E_LAYER_ALIGNMENT: 'payload.erofs data does not start at a multiple of 4096',
      E_LAYER_UNSIGNED: 'no signature member',
      E_SIGNATURE_MALFORMED:
        'a signature member is not a JSON object, or not in RFC 8785 canonical form (its fields are then checked by keys/)',
      E_NO_TRUST_ANCHOR: 'verifyLayer called without anchors',
      E_POLICY_DIGEST: 'policy.cil does not match the signed SHA-256',
      E_VERITY_SUPERBLOCK:
        'payload.verity has no valid superblock, its salt / block count differ from the manifest, or the rest of its 4096-byte block is not zero',
      E_PAYLOAD_DIGEST:
        'payload.erofs does not match what the manifest binds: the signed SHA-256 (format 1), or a data block that does not match the signed verity root (`details.block`)',
      E_VERITY_TREE_MISMATCH:
        'a payload.verity hash block does not match its parent or the signed root hash (`details.block`: hash-area block, 0 = superblock; `details.level`)',
      E_VERITY_ROOT_MISMATCH:
        'no longer raised: the top-down check reports a wrong top block as `E_VERITY_TREE_MISMATCH` (listed so the code is never reused)',
    },
    'Packing, signing, extracting': {
      E_PACK_INPUT:
        'layer.json or rootfs/ missing or unreadable, empty policy.cil, a source file changed while packing',
      E_POLICY_INVALID:
        'policy.cil does not compile with secilc against the base policy layers/selinux/*.cil (`details.line`, `details.secilc`), or says something about another layer, a group or the platform (doc/selinux.md); on a device the layer is refused and the running policy stays',
      E_POLICY_CHECKER_MISSING:
        'policy.cil cannot be checked: secilc is not installed (`details.debianPackage`: `secilc`)',
      E_TREE_SPECIAL_FILE: 'rootfs/ holds a device node, FIFO or socket',
      E_TREE_SETUID:
        'rootfs/ holds a setuid or setgid file or directory (layers are mounted nosuid; `chmod u-s,g-s` it)',
      E_TREE_LINK_ESCAPE: 'rootfs/ holds a relative symlink that climbs above the root',
      E_EPOCH_INVALID: {
        meaning: 'SOURCE_DATE_EPOCH / `--source-date-epoch` is not a non-negative integer',
        exit: 2,
      },
      E_SIGNER_CHAIN: 'no signer certificate',
      E_KEY_MISMATCH: 'the signing key does not belong to the certificate',
      E_SIGNATURE_SELFCHECK: 'the deterministic signature did not verify right after signing (never written)',
      E_ALREADY_SIGNED: '`sign` by a signer who already signed this layer',
      E_LAYER_WRITE: 'the output cannot be written / renamed into place',
      E_INIT_EXISTS: '`init` into a directory that already has layer.json',
      E_EXTRACT_TARGET: 'extraction target exists and is not empty',
      E_EXTRACT_UNSAFE:
        'the extracted payload holds a device node, FIFO, socket or an escaping symlink (nothing is left behind); setuid/setgid bits are removed and reported, not refused',
      E_EXTRACT_WRITE: 'the extracted image cannot be written',
      E_USAGE: {
        meaning:
          'missing `-o`, `--key`/`--cert` or `--trust`, or a `--writable-root` other than ephemeral or persistent',
        exit: 2,
      },
    },
    'OCI import': {
      E_OCI_FORMAT:
        'neither an OCI layout (oci-layout + index.json) nor a docker save archive (manifest.json)',
      E_OCI_ARCHIVE:
        'unreadable tar (outer or a layer), missing/duplicate/oversized JSON, missing blob, too many layers or entries',
      E_OCI_DIGEST:
        'a blob does not match its OCI digest, a docker layer its diff_id, or the source manifest the digest a reference pins',
      E_OCI_REF: '`--ref` names no image, or several images and no `--ref`',
      E_OCI_ARCH:
        'the image index has no linux image for the layer’s architecture (`--arch`, default this machine’s), or the image chosen is built for another architecture than `--arch` names',
      E_OCI_SOURCE:
        'skopeo cannot fetch the image reference (registry unreachable, no such image or tag, TLS refused, not a transport reference)',
      E_OCI_PATH:
        'a layer entry with an absolute path, a `..` component, or one that would be written through a symlink or below a file',
      E_OCI_WHITEOUT:
        'a whiteout naming no file: `.wh.`, `.wh..`, `.wh...`, or a reserved `.wh..wh.*` name other than the opaque marker',
      E_OCI_LINK_ESCAPE:
        'a symlink climbing out of the root, or a hard link that is absolute, climbs out or names no regular file',
    },
    'Compose import (import-compose)': {
      E_COMPOSE_YAML:
        'the compose file is not YAML (a syntax error, a duplicate key, more aliases than allowed), not a mapping, or over 1 MiB; `details.line` names the line',
      E_COMPOSE_INVALID:
        'a compose value of the wrong type or form (a port that is no number, a relative working_dir, an unknown restart policy, a service without image); `details.field` names the key path (`services.web.ports[0]`)',
      E_COMPOSE_UNSUPPORTED:
        'a compose key or value with no layer equivalent, refused rather than dropped (build, networks, bind mounts, a published port other than the container port, a volume shared by services, variable interpolation); `details.field` names the key path',
    },
    'Dependency resolution (resolve)': {
      E_DEP_MISSING: 'the app or a dependency is not installed',
      E_DEP_CONFLICT: 'no installed version satisfies every range on a dependency (`details.ranges`)',
      E_DEP_CYCLE: 'layers depend on each other in a cycle (`details.cycle`)',
      E_DEP_PROVIDES_CONFLICT: 'two layers of the closure provide the same library',
      E_DEP_KIND: 'a dependency is an app layer',
      E_SERVICE_CYCLE: "services' `after` form a cycle",
      E_SERVICE_UNKNOWN: '`after` names a service no layer of the closure defines',
    },
  },
);

export type LayerCode = keyof typeof LAYER_CODES.codes;
