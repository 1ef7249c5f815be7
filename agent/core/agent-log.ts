// The agent's own log: one line per event on the console (stderr) and, as PID 1 of a real
// system, in the kernel log (/dev/kmsg, with the syslog priority of its level) so it survives
// until the data partition is up. The line is common/'s log line (the broker's too): text with
// an ISO timestamp, level and `key=value` fields, or one JSON object a line (`--log-format
// json`, MWAY_LOG_FORMAT=json or the config's `logFormat`) for a log shipper. Fields name what
// the line is about: layer, service, command, action, job, peer, code.
import { closeSync, openSync, writeSync } from 'node:fs';
import { type LogFields, type LogFormat, logFields, logLine } from '../../common/index.ts';

export type Level = 'info' | 'warn' | 'error';
export type LogFn = (level: Level, message: string, fields?: LogFields) => void;

// kmsg priorities (syslog): err 3, warning 4, info 6.
const KMSG_PRIO: Record<Level, number> = { error: 3, warn: 4, info: 6 };

export interface AgentLogger {
  log: LogFn;
  /** Recent lines (text form), for `status` and tests. */
  recent(): string[];
  /** The console format from here on (the config file's, when no flag or env gave one). */
  setFormat(format: LogFormat): void;
  readonly format: LogFormat;
  close(): void;
}

export function createAgentLogger(options: {
  kmsg: boolean;
  console?: (line: string) => void;
  format?: LogFormat;
  now?: () => Date;
}): AgentLogger {
  let kmsg: number | undefined;
  if (options.kmsg) {
    try {
      kmsg = openSync('/dev/kmsg', 'w');
    } catch {
      kmsg = undefined;
    }
  }
  const out = options.console ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  let format: LogFormat = options.format ?? 'text';
  const recent: string[] = [];
  return {
    log(level, message, fields = {}) {
      const at = now();
      const text = logLine('text', 'milkyway-agent', level, message, fields, at);
      recent.push(text.slice(0, -1));
      if (recent.length > 200) recent.shift();
      try {
        out(format === 'text' ? text : logLine(format, 'milkyway-agent', level, message, fields, at));
      } catch {
        // a closed console must not take PID 1 down
      }
      if (kmsg !== undefined) {
        try {
          // The kernel stamps its own time; the priority carries the level.
          const line = `${message}${logFields(fields)}`.slice(0, 900);
          writeSync(kmsg, `<${KMSG_PRIO[level]}>milkyway-agent: ${line}\n`);
        } catch {
          // kmsg rate limits writers; dropping a line is fine
        }
      }
    },
    recent: () => [...recent],
    setFormat(f) {
      format = f;
    },
    get format() {
      return format;
    },
    close() {
      if (kmsg !== undefined) closeSync(kmsg);
      kmsg = undefined;
    },
  };
}
