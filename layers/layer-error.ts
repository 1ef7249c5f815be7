// The one error class of layers/; codes are listed in doc/errors-layers.md.
import { MilkyWayError } from '../common/index.ts';

export class LayerError extends MilkyWayError {}
