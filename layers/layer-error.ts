// The one error class of layers/; its codes are the table in layers/layer-codes.ts
// (doc/errors-layers.md is generated from it).
import { COMMON_CODES, type CommonCode, MilkyWayError, type MilkyWayErrorOptions } from '../common/index.ts';
import { LAYER_CODES, type LayerCode } from './layer-codes.ts';

export class LayerError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...LAYER_CODES.codes };
  declare readonly code: LayerCode | CommonCode;
  constructor(code: LayerCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
