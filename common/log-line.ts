// One log line for the daemons, for a person on a console or for a log shipper: text with an
// ISO timestamp, level and `key=value` fields, or one JSON object per line (`--log-format json`
// or MWAY_LOG_FORMAT=json). Field names are stable: time, level, source, msg, then the fields.

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

/** The format a flag or MWAY_LOG_FORMAT asks for; text unless json. */
export function logFormatOf(flag: string | undefined, env = process.env): LogFormat {
  return (flag ?? env.MWAY_LOG_FORMAT) === 'json' ? 'json' : 'text';
}

/** One line, newline included. */
export function logLine(
  format: LogFormat,
  source: string,
  level: string,
  msg: string,
  fields: LogFields = {},
  now: Date = new Date(),
): string {
  const set = Object.entries(fields).filter(([, v]) => v !== undefined);
  if (format === 'json') {
    return `${JSON.stringify({ time: now.toISOString(), level, source, msg, ...Object.fromEntries(set) })}\n`;
  }
  return `${now.toISOString()} ${source} ${level}: ${msg}${logFields(fields)}\n`;
}

/** The text form of `fields`: ` key=value` each (quoted when the value has a space, `"` or `=`). */
export function logFields(fields: LogFields): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}=${/[\s"=]/.test(String(v)) ? JSON.stringify(String(v)) : String(v)}`)
    .join('');
}
