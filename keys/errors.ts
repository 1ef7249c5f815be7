// KeysError: the single error class of keys/ (PKI, envelopes, sealed secrets).
// Codes are stable and listed in doc/errors-keys.md.
import { MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';

export class KeysError extends MilkyWayError {
  constructor(code: string, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
