// The base of every part's error class: a stable machine-readable `code`, the
// offending path or field when there is one, and the underlying failure as `cause`.
// Each part (keys/, imagebuild/, …) subclasses this once; CLIs print `code: message`.

export interface MilkyWayErrorOptions {
  cause?: unknown;
  /** File, field or member the error is about (like Node's `err.path`). */
  path?: string;
  /** Extra machine-readable details, printed by `--json`. */
  details?: Record<string, unknown>;
}

export class MilkyWayError extends Error {
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

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.path !== undefined) out.path = this.path;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

export function isMilkyWayError(e: unknown): e is MilkyWayError {
  return e instanceof MilkyWayError;
}

/** Message of any thrown value, for wrapping foreign errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
