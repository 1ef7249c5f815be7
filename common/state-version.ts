// Versions of the small state files the agent and `mway` keep (uids.json, the replay cache,
// memberships, operator sequence counters). Each carries `version`; the unversioned form
// written before versions existed is version 0 and is upgraded by its reader (read old, write
// new atomically). A version above the reader's is refused with E_STATE_VERSION and the file
// left as it is: a downgraded agent must not reset what a newer one recorded (a replay cache
// reset would let a command run twice).
import type { CommonCode } from './common-codes.ts';
import type { MilkyWayErrorOptions } from './error.ts';

export interface StateVersionOptions {
  /** What the file is, for messages ("uid table"). */
  what: string;
  path: string;
  /** The version this code writes. */
  current: number;
  /** Whether `raw` is the unversioned form (version 0). */
  isLegacy: (raw: unknown) => boolean;
  /** Makes the caller's part's error. */
  error: (code: CommonCode, message: string, options: MilkyWayErrorOptions) => Error;
}

/** The version of a parsed state document, 0 for the legacy form; refuses newer or unknown ones. */
export function stateVersionOf(raw: unknown, o: StateVersionOptions): number {
  if (o.isLegacy(raw)) return 0;
  const v =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? (raw as { version?: unknown }).version
      : undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw o.error('E_STATE_CORRUPT', `Cannot read ${o.what} ${o.path}: it has no valid version`, {
      path: o.path,
    });
  }
  if (v > o.current) {
    throw o.error(
      'E_STATE_VERSION',
      `Cannot read ${o.what} ${o.path}: it is version ${v}, written by a newer release; this one knows up to ${o.current} and leaves it unchanged`,
      { path: o.path, details: { version: v, known: o.current } },
    );
  }
  return v;
}
