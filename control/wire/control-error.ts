// The control part's one error class (broker, peer link, operator client, mway);
// codes are listed in doc/errors-control.md.
import { MilkyWayError } from '../../common/index.ts';

export class ControlError extends MilkyWayError {}

/** A bad flag or argument: `E_USAGE`, exit code 2 like citty's own usage errors. */
export function usageError(message: string): ControlError {
  return new ControlError('E_USAGE', message, { details: { exitCode: 2 } });
}
