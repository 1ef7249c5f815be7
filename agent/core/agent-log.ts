// The agent's own log: one line per event on the console (stderr) and, as PID 1 of a real
// system, in the kernel log (/dev/kmsg) so it survives until the data partition is up.
import { closeSync, openSync, writeSync } from 'node:fs';

export type Level = 'info' | 'warn' | 'error';
export type LogFn = (level: Level, message: string) => void;

// kmsg priorities (syslog): err 3, warning 4, info 6.
const KMSG_PRIO: Record<Level, number> = { error: 3, warn: 4, info: 6 };

export interface AgentLogger {
  log: LogFn;
  /** Recent lines, for `status` and tests. */
  recent(): string[];
  close(): void;
}

export function createAgentLogger(options: { kmsg: boolean; console?: (line: string) => void }): AgentLogger {
  let kmsg: number | undefined;
  if (options.kmsg) {
    try {
      kmsg = openSync('/dev/kmsg', 'w');
    } catch {
      kmsg = undefined;
    }
  }
  const out = options.console ?? ((line: string) => process.stderr.write(line));
  const recent: string[] = [];
  return {
    log(level, message) {
      const line = `${new Date().toISOString()} milkyway-agent ${level}: ${message}`;
      recent.push(line);
      if (recent.length > 200) recent.shift();
      try {
        out(`${line}\n`);
      } catch {
        // a closed console must not take PID 1 down
      }
      if (kmsg !== undefined) {
        try {
          writeSync(kmsg, `<${KMSG_PRIO[level]}>milkyway-agent: ${message.slice(0, 900)}\n`);
        } catch {
          // kmsg rate limits writers; dropping a line is fine
        }
      }
    },
    recent: () => [...recent],
    close() {
      if (kmsg !== undefined) closeSync(kmsg);
      kmsg = undefined;
    },
  };
}
