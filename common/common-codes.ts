// The codes common/ itself raises, shared by every part: each part's error class accepts
// them beside its own (common/regular-file.ts raises them in the caller's class).
import { defineCodes } from './error-table.ts';

export const COMMON_CODES = defineCodes(
  {
    part: 'common',
    source: 'common/common-codes.ts',
    errorClasses: ['MilkyWayError', 'CommonError', 'ToolError', 'FileError'],
    title: 'common/ error codes (shared by every part)',
    intro: `Errors raised by \`common/\` itself keep these codes in every binary. The subprocess runner
(common/exec.ts) raises \`ToolError\`; the regular-file reader (common/regular-file.ts) raises the
calling part's own error class with the codes below (a part may map a failed read to its own
code, e.g. keys/' \`E_CERT_READ\`, layers/' \`E_LAYER_READ\`). Every part's error class accepts
these codes beside its own table.`,
  },
  {
    Codes: {
      E_TOOL_MISSING: 'an external program is not installed; the message names its Debian package',
      E_TOOL_FAILED: 'an external program exited non-zero; the message has its stderr tail',
      E_TOOL_TIMEOUT: 'an external program exceeded its time limit and was killed',
      E_TOOL_OUTPUT_LIMIT: 'an external program printed more than its output bound and was killed',
      E_NOT_REGULAR_FILE:
        'a path that must be a regular file is a FIFO, directory, socket, device node (or a symlink where links are refused): by type, before any read',
      E_FILE_READ:
        'a file cannot be opened or read (missing, permission, I/O error), or it was replaced while being opened',
      E_FILE_WRITE:
        'an output file or directory cannot be created or written: a directory where the file goes, a file where a directory must be, no permission, a read-only or full file system (nothing is left behind)',
      E_FILE_TOO_LARGE:
        'a file is over the size cap of what it holds (checked on the open file before reading)',
      E_STATE_VERSION: {
        meaning:
          'a state file (uids.json, the replay cache, memberships, an operator sequence counter) is of a version above the one this release knows: a newer release wrote it. It is refused and left unchanged',
        fix: 'Run the newer release again; never delete the file to get past this (a replay cache reset lets a command run twice).',
      },
      E_STATE_CORRUPT: {
        meaning:
          'a state file is not any version of its format (damaged, or not JSON of its shape); nothing is reset',
        fix: 'Restore it from a backup, or move it aside knowingly.',
      },
      E_USAGE: {
        meaning:
          'the command line is wrong: an unknown command or flag, a flag without its value, a bad value, a flag given twice, an unexpected or a missing argument. `path` names the flag or word, `details.reason` says which (doc/cli.md)',
        exit: 2,
        fix: 'Run the verb with `--help`; a value starting with `-` is written `--flag=-…`, and words for a remote command go after `--`.',
      },
      E_INTERNAL: {
        meaning: 'a bug; no input may cause it',
        exit: 70,
        fix: 'Run again with `--debug` and report it.',
      },
    },
  },
);

export type CommonCode = keyof typeof COMMON_CODES.codes;
