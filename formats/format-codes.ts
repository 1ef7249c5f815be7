// The codes of FormatError (formats/format-error.ts): the table types its `code` and
// generates doc/errors-formats.md (npm run docs:errors).
import { defineCodes } from '../common/index.ts';

export const FORMAT_CODES = defineCodes(
  {
    part: 'formats',
    source: 'formats/format-codes.ts',
    errorClasses: ['FormatError'],
    title: 'formats/ error codes',
    intro: `Every error from formats/ (dm-verity, GPT, cpio, file system images) is a \`FormatError\`
(subclass of \`MilkyWayError\`, \`formats/format-error.ts\`; \`isFormatError(e, code?)\`) with a
stable \`code\`. The codes are the ones these formats had while they lived in imagebuild/, so
scripts and callers matching on them keep working; only the class changed (imagebuild's
\`ImageError\` now covers the image builder alone). \`mway-image verity|gpt\` print them as
\`mway-image: CODE: message\` and exit non-zero (1 for \`E_VERITY_MISMATCH\` from \`verity verify\`).
Missing tools come from common/exec.ts as \`E_TOOL_MISSING\` naming the Debian package; tool
failures as \`E_TOOL_FAILED\` / \`E_TOOL_TIMEOUT\`.`,
    outro: `Layers report these as \`E_LAYER_TAR\` (doc/errors-layers.md) with the format's error as \`cause\`.`,
  },
  {
    'dm-verity': {
      E_VERITY_UNALIGNED: 'data size is not a multiple of 4096 and `pad` was not asked',
      E_VERITY_BAD_SIZE:
        'empty data, or data blocks outside 1 … 2^40, or more blocks asked than the file has',
      E_VERITY_BAD_OFFSET:
        'hash offset negative, not a number, overlapping the data, or not a multiple of 4096 (`formatVerity`) / 512 (`verifyVerity`, also the data offset)',
      E_VERITY_BAD_SALT: 'salt not hex or longer than 256 bytes',
      E_VERITY_BAD_ROOT: 'root hash is not 64 hex digits',
      E_BAD_UUID: 'a UUID argument is not 8-4-4-4-12 hex',
      E_VERITY_DATA_MISSING: 'data or hash file cannot be opened',
      E_VERITY_DATA_SHORT: 'data file shorter than the blocks the superblock covers (or ended while hashing)',
      E_VERITY_HASH_SHORT: 'hash file shorter than the tree the superblock describes',
      E_VERITY_READ: 'read error while hashing',
      E_VERITY_WRITE: 'hash file cannot be opened for writing',
      E_VERITY_MISMATCH: 'a block does not match; `details`: `area` (`data`/`hash`), `block`, `level`',
      E_VERITY_SB_TRUNCATED: 'superblock shorter than 512 bytes',
      E_VERITY_SB_MAGIC: 'magic is not `verity\\0\\0`',
      E_VERITY_SB_VERSION: 'version is not 1',
      E_VERITY_SB_HASH_TYPE: 'hash type is not 1 (format 1)',
      E_VERITY_SB_ALGORITHM: 'algorithm is not `sha256` (NUL-padded)',
      E_VERITY_SB_BLOCK_SIZE: 'block sizes are not 4096/4096',
      E_VERITY_SB_DATA_BLOCKS: 'data blocks is 0 or above 2^40',
      E_VERITY_SB_SALT: 'salt size above 256',
      E_VERITY_SB_PADDING: 'reserved superblock bytes are not zero',
    },
    'File system images': {
      E_FS_SOURCE: 'the source is not a directory',
      E_FS_BAD_EPOCH: 'SOURCE_DATE_EPOCH outside 0 … 2^32−1',
      E_FS_BAD_SIZE: 'requested size not a positive multiple of 4096, or above 16 TiB',
      E_FS_TOO_SMALL: 'the file system does not fit in the requested size (`details.needed`)',
      E_FS_BAD_VOLUME_ID: 'FAT volume id is not 8 hex digits',
      E_FS_NAME: 'a file name ext4\'s debugfs step cannot quote (`"`, `\\`, newline)',
      E_FS_UNREADABLE:
        'a FAT or ISO 9660 volume read without mounting (a cloud-init seed) is damaged, is past its end, or holds a file above the size asked for (the message names the check)',
    },
    GPT: {
      E_GPT_BAD_SIZE:
        'disk size not a multiple of 1 MiB in 4 MiB … 16 TiB, or a partition size not a positive multiple of 512',
      E_GPT_TOO_MANY: 'more than 128 partitions',
      E_GPT_NO_SPACE: 'a partition would end past the last usable LBA',
      E_GPT_BAD_NAME: 'partition name longer than 36 UTF-16 units',
      E_GPT_IMAGE_TOO_BIG: 'an image file is larger than its partition',
      E_GPT_OPEN: 'disk cannot be opened',
      E_NOT_REGULAR_FILE:
        'the disk path is a FIFO, directory or device: refused by type (opened non-blocking, never waits for a writer)',
      E_GPT_TRUNCATED: 'disk too small, or ends inside a header or entry array',
      E_GPT_MAGIC: 'no `EFI PART` signature (primary and backup)',
      E_GPT_HEADER_SIZE: 'header size outside 92 … 512',
      E_GPT_HEADER_CRC: 'header CRC32 wrong (primary and backup)',
      E_GPT_HEADER_LBA: "header's own LBA field is not where it was read",
      E_GPT_ENTRY_SHAPE: 'entry count 0 or > 1024, or entry size outside 128 … 1024',
      E_GPT_ENTRY_RANGE: 'entry array outside the disk',
      E_GPT_ENTRIES_CRC: 'entry array CRC32 wrong',
      E_GPT_USABLE_RANGE: 'first/last usable LBAs inconsistent with the disk',
      E_GPT_PART_RANGE: 'a partition outside the usable range, or ending before it starts',
      E_GPT_OVERLAP: 'two partitions overlap',
      E_GPT_BACKUP:
        '`checkGptRedundancy`: the backup header is missing (disk cut short), damaged, not pointing back to LBA 1, or disagrees with the primary (GUID, usable range, entries)',
      E_GPT_PMBR:
        '`checkGptRedundancy`: sector 0 is not a protective MBR for this disk (0x55AA, one 0xEE record from LBA 1 of disk size − 1)',
      E_GPT_RESERVED:
        '`checkGptRedundancy`: a GPT header sector is not zero after HeaderSize (reserved, outside the CRC; UEFI 2.10 §5.3.2)',
    },
    cpio: {
      E_CPIO_BAD_PATH: 'empty path or one containing `..`',
      E_CPIO_DUPLICATE: 'the same path twice',
      E_CPIO_TOO_BIG: "a file over 4 GiB (newc's size field)",
      E_CPIO_BAD_EPOCH: 'SOURCE_DATE_EPOCH outside 0 … 2^32−1',
      E_CPIO_MAGIC: 'readCpio: a header without the newc magic `070701`',
      E_CPIO_FIELD: 'readCpio: a header field that is not 8 hex digits',
      E_CPIO_NAME: 'readCpio: a member name running past the archive or not NUL-terminated',
      E_CPIO_SIZE: 'readCpio: member data running past the archive',
      E_CPIO_TRUNCATED: 'readCpio: no trailer before the end',
      E_CPIO_TOO_MANY: 'readCpio: over 1,000,000 members',
    },
    'ustar header (`decodeUstarHeader`)': {
      E_TAR_TRUNCATED: 'fewer than 512 bytes',
      E_TAR_CHECKSUM: 'the checksum field is not octal, or not the sum of the header bytes',
      E_TAR_MAGIC: 'magic is not `ustar\\0` (old GNU `ustar  ` headers included)',
      E_TAR_FIELD: 'a numeric field (mode, uid, gid, size, mtime) is not octal; names it',
    },
  },
);

export type FormatCode = keyof typeof FORMAT_CODES.codes;
