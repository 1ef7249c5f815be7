// The one error class of bootchain/; its codes are the table in bootchain/bootchain-codes.ts
// (doc/errors-bootchain.md is generated from it).
import { COMMON_CODES, type CommonCode, MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';
import { BOOTCHAIN_CODES, type BootchainCode } from './bootchain-codes.ts';

export class BootchainError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...BOOTCHAIN_CODES.codes };
  declare readonly code: BootchainCode | CommonCode;
  constructor(code: BootchainCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
