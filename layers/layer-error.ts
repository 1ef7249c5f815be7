// The one error class of layers/; codes are listed in doc/errors-layers.md.
import { MilkyWayError } from '../common/error.ts';

export class LayerError extends MilkyWayError {}
