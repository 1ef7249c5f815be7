// The one error class of imagebuild/ (the image builder); its codes are the table in
// imagebuild/image-codes.ts (doc/errors-imagebuild.md is generated from it).
import { COMMON_CODES, type CommonCode, MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';
import { IMAGE_CODES, type ImageCode } from './image-codes.ts';

export class ImageError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...IMAGE_CODES.codes };
  declare readonly code: ImageCode | CommonCode;
  constructor(code: ImageCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

export function isImageError(e: unknown, code?: ImageCode | CommonCode): e is ImageError {
  return e instanceof ImageError && (code === undefined || e.code === code);
}
