// The control part's one error class (broker, peer link, operator client, mway);
// codes are listed in doc/errors-control.md.
import { MilkyWayError } from '../common/error.ts';

export class ControlError extends MilkyWayError {}
