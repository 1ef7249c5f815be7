// The one error class of formats/ (dm-verity, GPT, cpio, file system images), with stable
// `E_...` codes listed in doc/errors-formats.md. The codes are the ones these formats had
// while they lived in imagebuild/, so callers and docs matching on a code keep working.
import { MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';

export class FormatError extends MilkyWayError {
  constructor(code: string, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

export function isFormatError(e: unknown, code?: string): e is FormatError {
  return e instanceof FormatError && (code === undefined || e.code === code);
}
