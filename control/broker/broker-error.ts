// The broker's own error class (its config, its database); its codes are the table in
// control/broker/broker-codes.ts (doc/errors-control-broker.md is generated from it). What
// the broker answers over the wire is a ControlError of control/wire.
import {
  COMMON_CODES,
  type CommonCode,
  MilkyWayError,
  type MilkyWayErrorOptions,
} from '../../common/index.ts';
import { BROKER_CODES, type BrokerCode } from './broker-codes.ts';

export class BrokerError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...BROKER_CODES.codes };
  declare readonly code: BrokerCode | CommonCode;
  constructor(code: BrokerCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
