// The one error class of formats/ (dm-verity, GPT, cpio, file system images); its codes
// are the table in formats/format-codes.ts (doc/errors-formats.md is generated from it).
// The codes are the ones these formats had while they lived in imagebuild/, so callers and
// docs matching on a code keep working.
import { COMMON_CODES, type CommonCode, MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';
import { FORMAT_CODES, type FormatCode } from './format-codes.ts';

export class FormatError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...FORMAT_CODES.codes };
  declare readonly code: FormatCode | CommonCode;
  constructor(code: FormatCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

export function isFormatError(e: unknown, code?: FormatCode | CommonCode): e is FormatError {
  return e instanceof FormatError && (code === undefined || e.code === code);
}
