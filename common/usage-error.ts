// The one error every binary raises for a wrong command line: E_USAGE (exit 2), with the
// flag or word at fault as `path` and why as `details.reason` (doc/cli.md lists the reasons).
import { CommonError } from './error.ts';

/** Why a command line was refused (stable; scripts may match on it). */
export type UsageReason =
  | 'unknown-command'
  | 'unknown-flag'
  | 'missing-value'
  | 'bad-value'
  | 'repeated-flag'
  | 'unexpected-argument'
  | 'missing-argument'
  | 'invalid';

export class UsageError extends CommonError {
  readonly reason: UsageReason;
  constructor(message: string, reason: UsageReason = 'invalid', where?: string) {
    super('E_USAGE', message, { ...(where === undefined ? {} : { path: where }), details: { reason } });
    this.reason = reason;
  }
}

export function isUsageError(e: unknown): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === 'E_USAGE';
}
