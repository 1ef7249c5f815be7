// The wire's one error class (transport, protocol, enrollment, audit chain, a peer's
// refusals and results); its codes are the table in control/wire/wire-codes.ts
// (doc/errors-control-wire.md is generated from it).
import {
  COMMON_CODES,
  type CommonCode,
  MilkyWayError,
  type MilkyWayErrorOptions,
} from '../../common/index.ts';
import { WIRE_CODES, type WireCode } from './wire-codes.ts';

export class ControlError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...WIRE_CODES.codes };
  declare readonly code: WireCode | CommonCode;
  constructor(code: WireCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
