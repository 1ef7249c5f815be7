// The one error class of imagebuild/ (disk formats and the image builder), with
// stable `E_...` codes listed in doc/errors-imagebuild.md.
import { MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';

export class ImageError extends MilkyWayError {
  constructor(code: string, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

export function isImageError(e: unknown, code?: string): e is ImageError {
  return e instanceof ImageError && (code === undefined || e.code === code);
}
