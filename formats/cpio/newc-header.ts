// The 110-byte header of a cpio "newc" member (magic 070701), declared once as a field table:
// thirteen numbers as 8 ASCII hex digits each after the magic (Linux
// Documentation/driver-api/early-userspace/buffer-format.rst; GNU cpio's `newc` format). The
// name (namesize bytes, NUL included) follows, padded so the data starts 4-aligned.
import { fieldTable } from '../_field-table.ts';

export const NEWC_MAGIC = '070701';
/** newc with a checksum (the sum of the data bytes in c_check); the reader accepts it too. */
export const NEWC_CRC_MAGIC = '070702';

const S = 'buffer-format.rst, cpio_header';
export const NEWC_HEADER = fieldTable('cpio newc header', 110, [
  { name: 'magic', offset: 0, size: 6, type: 'text', value: NEWC_MAGIC, spec: `${S}: c_magic` },
  { name: 'ino', offset: 6, size: 8, type: 'hex', spec: `${S}: c_ino` },
  { name: 'mode', offset: 14, size: 8, type: 'hex', spec: `${S}: c_mode (type and permission bits)` },
  { name: 'uid', offset: 22, size: 8, type: 'hex', value: 0, spec: `${S}: c_uid` },
  { name: 'gid', offset: 30, size: 8, type: 'hex', value: 0, spec: `${S}: c_gid` },
  { name: 'nlink', offset: 38, size: 8, type: 'hex', spec: `${S}: c_nlink` },
  { name: 'mtime', offset: 46, size: 8, type: 'hex', spec: `${S}: c_mtime` },
  { name: 'filesize', offset: 54, size: 8, type: 'hex', spec: `${S}: c_filesize` },
  { name: 'devMajor', offset: 62, size: 8, type: 'hex', value: 0, spec: `${S}: c_maj` },
  { name: 'devMinor', offset: 70, size: 8, type: 'hex', value: 0, spec: `${S}: c_min` },
  { name: 'rdevMajor', offset: 78, size: 8, type: 'hex', value: 0, spec: `${S}: c_rmaj` },
  { name: 'rdevMinor', offset: 86, size: 8, type: 'hex', value: 0, spec: `${S}: c_rmin` },
  { name: 'namesize', offset: 94, size: 8, type: 'hex', spec: `${S}: c_namesize (NUL included)` },
  { name: 'check', offset: 102, size: 8, type: 'hex', value: 0, spec: `${S}: c_chksum (0 for 070701)` },
]);

export const NEWC_HEADER_SIZE = NEWC_HEADER.size;
