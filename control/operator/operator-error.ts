// `mway`'s own error class; its codes are the table in control/operator/operator-codes.ts
// (doc/errors-control-operator.md is generated from it).
import {
  COMMON_CODES,
  type CommonCode,
  type ErrorFactory,
  MilkyWayError,
  type MilkyWayErrorOptions,
} from '../../common/index.ts';
import { OPERATOR_CODES, type OperatorCode } from './operator-codes.ts';

export class OperatorError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...OPERATOR_CODES.codes };
  declare readonly code: OperatorCode | CommonCode;
  constructor(code: OperatorCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A bad flag or argument: `E_USAGE`, exit code 2 like citty's own usage errors. */
export function usageError(message: string): OperatorError {
  return new OperatorError('E_USAGE', message);
}

/** OperatorError for common/'s file readers (openRegularFile, readRegularFile). */
export const operatorError: ErrorFactory<OperatorCode> = (code, message, options) =>
  new OperatorError(code, message, options);
