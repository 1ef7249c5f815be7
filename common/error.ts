// The base of every part's error class: a stable machine-readable `code`, the
// offending path or field when there is one, and the underlying failure as `cause`.
// Each part (keys/, layers/, …) subclasses this once and types `code` with its table
// (common/error-table.ts), from which the exit code a CLI uses also comes.
import { COMMON_CODES, type CommonCode } from './common-codes.ts';
import { type CodeSpec, exitCodeOf } from './error-table.ts';

export interface MilkyWayErrorOptions {
  cause?: unknown;
  /** File, field or member the error is about (like Node's `err.path`). */
  path?: string;
  /** Extra machine-readable details, printed by `--json`. */
  details?: Record<string, unknown>;
}

export class MilkyWayError extends Error {
  /** The codes this class may carry (its part's table and common/'s), for `exitCode`. */
  static codes: Readonly<Record<string, CodeSpec>> = COMMON_CODES.codes;

  readonly code: string;
  readonly path: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: MilkyWayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options.path;
    this.details = options.details;
  }

  /** The exit code of a CLI failing with this error: the code's, from its part's table. */
  get exitCode(): number {
    return exitCodeOf((this.constructor as typeof MilkyWayError).codes, this.code);
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.path !== undefined) out.path = this.path;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

/** An error of common/ itself (ToolError, FileError): one of its codes. */
export class CommonError extends MilkyWayError {
  declare readonly code: CommonCode;
  constructor(code: CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}

/**
 * An error another process answered with (the broker over the wire, the agent over D-Bus):
 * its code is from that process's tables, which this side need not share, so it is a plain
 * string. Its exit code is 1 unless it is one of common/'s (E_USAGE, E_INTERNAL).
 */
export class RemoteError extends MilkyWayError {}

export function isMilkyWayError(e: unknown): e is MilkyWayError {
  return e instanceof MilkyWayError;
}

/** Message of any thrown value, for wrapping foreign errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
