// The one error class of update/; its codes are the table in update/update-codes.ts
// (doc/errors-update.md is generated from it).
import { COMMON_CODES, type CommonCode, MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';
import { UPDATE_CODES, type UpdateCode } from './update-codes.ts';

export class UpdateError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...UPDATE_CODES.codes };
  declare readonly code: UpdateCode | CommonCode;
  constructor(code: UpdateCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
