// The codes of ImageError (imagebuild/image-error.ts): the table types its `code` and
// generates doc/errors-imagebuild.md (npm run docs:errors).
import { defineCodes } from '../common/index.ts';

export const IMAGE_CODES = defineCodes(
  {
    part: 'imagebuild',
    source: 'imagebuild/image-codes.ts',
    errorClasses: ['ImageError'],
    title: 'imagebuild/ error codes',
    intro: `Every error from the image builder is an \`ImageError\` (subclass of \`MilkyWayError\`) with a
stable \`code\`; the CLI prints \`mway-image: CODE: message\` and exits non-zero. The formats it
writes and reads (dm-verity, GPT, cpio, file system images) live in formats/ and throw
\`FormatError\` with the codes listed in [errors-formats.md](errors-formats.md) (\`E_VERITY_*\`,
\`E_GPT_*\`, \`E_CPIO_*\`, \`E_FS_*\`, \`E_BAD_UUID\`); they reach \`mway-image\` unchanged. Missing
tools come from common/exec.ts as \`E_TOOL_MISSING\` naming the Debian package; tool failures
as \`E_TOOL_FAILED\` / \`E_TOOL_TIMEOUT\`. The codes below are listed with the formats they check in
[disk-layout.md](disk-layout.md) and [boot.md](boot.md). The layout check's codes are not
thrown: each is one failed check of \`verify\` (and one problem \`inspect\` lists), its message
starting with the code. Each failed check of
\`mway-image verify --json\` carries its \`code\` (a check failing without one shows as
\`E_INTERNAL\`); \`mway-image verity verify --json\` prints
\`{ok:false, code:"E_VERITY_MISMATCH", area, block, level, message}\`.`,
  },
  {
    'Image spec, build, inspect, verify': {
      E_SPEC_INVALID:
        'the image spec is not JSON or a key is wrong; `details.field` is the key path (`partitions.data`, `layers[1]`); also CoreOS bigger than an explicit `partitions.coreos`',
      E_SPEC_READ: 'the spec file cannot be read',
      E_SPEC_EPOCH: 'SOURCE_DATE_EPOCH is not a whole number of seconds in 0 … 2^32−1',
      E_SPEC_BINARY: 'a `coreos.binaries` source does not exist',
      E_SPEC_FILE: 'a `coreos.files` source does not exist',
      E_KEYS_MISSING:
        'the keys folder lacks some of its six files (and `generate` is off, or only some exist)',
      E_SIGN: 'a deterministic signature did not verify right after signing (refused to write)',
      E_VERITY_SIG_MALFORMED: 'the verity-sig partition is not the JSON shape of doc/disk-layout.md',
      E_VERITY_SIG_ROOT: "the verity signature names another root hash than the partition's",
      E_VERITY_SIG_SIGNER: "the verity signature names another certificate than its signer's",
      E_DISK_FS: 'a partition that should hold erofs does not',
      E_CMDLINE_ROOT:
        '`verify`: the UKI command line names another CoreOS root hash than the partition UUIDs spell',
      E_CMDLINE_MISSING: '`verify`: there is no UKI command line (or no `mway.certs` in it)',
      E_SECURE_CONFIG_FS: '`verify`: the secure-config partition cannot be extracted or lacks `secure.json`',
      E_VERIFY_NO_TRUST: { meaning: '`verify` without `--trust`', exit: 2 },
    },
    'Disk layout check (verify, inspect)': {
      E_LAYOUT_MISSING:
        'a partition of the table is not on the disk (the optional `peer-identity` may be absent)',
      E_LAYOUT_EXTRA:
        'a partition the table does not have, or a second one with a fixed partition’s name (the agent would mount the first)',
      E_LAYOUT_TYPE: 'a fixed partition with another type GUID',
      E_LAYOUT_ATTRIBUTES:
        'GPT attributes other than the table’s (bit 60 on the read-only rows, nothing else)',
      E_LAYOUT_LABEL:
        'CoreOS slot names that do not pair (`NAME_VERSION`, `.verity`, `.verity-sig`), or an empty slot A',
      E_LAYOUT_FILESYSTEM:
        'the partition’s first 4 KiB are not the file system (or verity superblock, signature JSON) its row holds',
    },
    'Boot: kernel, modules, initramfs, UKI, QEMU': {
      E_KERNEL_BAD_NAME: 'the kernel package name is not a Debian package name (e.g. a glob)',
      E_KERNEL_NOT_FOUND: 'apt-cache names no `linux-image-<abi>` for it, or the .deb path does not exist',
      E_KERNEL_DOWNLOAD: '`apt-get download` failed',
      E_KERNEL_BAD_PACKAGE: 'the .deb has no single `lib/modules/VERSION` or no `boot/vmlinuz-VERSION`',
      E_MODULES_DEP: '`modules.dep` cannot be read',
      E_MODULE_NOT_FOUND: 'a module (or a dependency) is not in `modules.dep`',
      E_MODULE_CYCLE: '`modules.dep` has a dependency cycle',
      E_ELF_BAD: "an ELF file's tables point outside it, or it is not 64-bit little-endian",
      E_BINARY_NOT_FOUND: 'a file or shared library is missing; the message names who needs it',
      E_UKI_BAD_STUB: 'the EFI stub is missing (install systemd-boot-efi) or not PE32+',
      E_QEMU_FIRMWARE: 'OVMF is missing (install ovmf)',
      E_QEMU_FAILED: 'QEMU exited non-zero by itself (bad disk, bad option); stderr in `details`',
      E_QEMU_QMP: 'the QMP socket did not answer or refused the command',
      E_QEMU_SERIAL: 'the file given for the serial console (`--serial FILE`) cannot be opened for writing',
      E_QEMU_BAD_FORWARD: '`mway-image run --forward`: a port outside 1 … 65535 or not HOST:GUEST',
      E_QEMU_BAD_TIMEOUT: '`mway-image run --timeout`: not 1 … 86400 seconds',
      E_QEMU_BAD_MEMORY: '`mway-image run --memory`: not a whole number of MiB in 128 … 65536',
      E_QEMU_NO_DISK: '`mway-image run`: the disk file (or the `--seed` file) does not exist',
      E_COMPILE_CACHE: "the build's node left no compile cache entry for a CoreOS module (doc/boot.md)",
    },
  },
);

export type ImageCode = keyof typeof IMAGE_CODES.codes;
