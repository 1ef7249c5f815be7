// KeysError: the single error class of keys/ (PKI, envelopes, sealed secrets). Its codes
// are the table in keys/keys-codes.ts (doc/errors-keys.md is generated from it).
import {
  COMMON_CODES,
  type CommonCode,
  type ErrorFactory,
  MilkyWayError,
  type MilkyWayErrorOptions,
} from '../common/index.ts';
import { KEYS_CODES, type KeysCode } from './keys-codes.ts';

export class KeysError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...KEYS_CODES.codes };
  declare readonly code: KeysCode | CommonCode;
  constructor(code: KeysCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

/** KeysError for common/'s file readers and writers (openRegularFile, writeFileAtomic). */
export const keysError: ErrorFactory<KeysCode> = (code, message, options) =>
  new KeysError(code, message, options);
