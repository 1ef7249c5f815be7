// The compose values that are small languages of their own (compose-spec.io): command
// strings split into words, durations, restart policies, port and volume specifications and
// healthchecks, each mapped to a layer's terms or refused naming its key path.

/** Throws the caller's error for `at` (a compose key path); never returns. */
export type Fail = (at: string, problem: string) => never;

interface Ctx {
  invalid: Fail;
  unsupported: Fail;
  /** A plain string (interpolation refused). */
  text: (v: unknown, at: string) => string;
}

/** A command string split as compose splits it (shell words: quotes and backslashes, no expansion). */
export function commandWords(s: string, at: string, invalid: Fail): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) invalid(at, 'an unterminated single quote');
      word += s.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1] as string)) j++;
        word += s[j];
      }
      if (j >= s.length) invalid(at, 'an unterminated double quote');
      inWord = true;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= s.length) invalid(at, 'a trailing backslash');
      word += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };

/** `1m30s`, `10s`, `500ms` (Go durations, as compose writes them) → seconds. */
export function durationSeconds(s: string, at: string, invalid: Fail): number {
  if (!/^(\d+(\.\d+)?(h|ms|m|s|us|ns))+$/.test(s))
    invalid(at, `${JSON.stringify(s)} is not a duration like 10s or 1m30s`);
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g))
    total += Number(m[1]) * (UNIT_SECONDS[m[2] as string] ?? 0);
  return total;
}

/** compose `restart` → the manifest's; what differs is noted. */
export function mapRestart(
  s: string,
  at: string,
  invalid: Fail,
  notes: string[],
): 'no' | 'always' | 'on-failure' {
  if (s === 'no' || s === 'always') return s;
  if (s === 'unless-stopped') {
    notes.push(`${at}: unless-stopped is always (a service an operator stops stays stopped until started)`);
    return 'always';
  }
  const m = /^on-failure(:(\d+))?$/.exec(s);
  if (m === null)
    return invalid(at, `${JSON.stringify(s)} is not no, always, on-failure[:N] or unless-stopped`);
  if (m[2] !== undefined)
    notes.push(
      `${at}: the retry count ${m[2]} is not mapped (the start limit is startLimitBurst, 5 in 10 s)`,
    );
  return 'on-failure';
}

/** A `ports` entry: the port the service listens on (published must be the same, on every address). */
export function parsePort(p: unknown, at: string, ctx: Ctx): { port: number; tcp: boolean } {
  let ip: string | undefined;
  let published: string | undefined;
  let target: string;
  let proto = 'tcp';
  if (typeof p === 'number') target = String(p);
  else if (typeof p === 'string') {
    const m = /^(?:(?:(\[[^\]]*\]|[^:[\]]*):)?([^:]*):)?([^:/]+)(?:\/([a-z]+))?$/.exec(ctx.text(p, at));
    if (m === null) return ctx.invalid(at, `${JSON.stringify(p)} is not [[IP:]PUBLISHED:]TARGET[/PROTOCOL]`);
    [, ip, published, target = '', proto = 'tcp'] = m;
  } else if (typeof p === 'object' && p !== null && !Array.isArray(p)) {
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'].includes(k))
        ctx.unsupported(`${at}.${k}`, 'not a port key');
    if (o.mode !== undefined && o.mode !== 'host' && o.mode !== 'ingress')
      ctx.invalid(`${at}.mode`, 'expected host or ingress');
    target = o.target === undefined ? '' : ctx.text(o.target, `${at}.target`);
    published = o.published === undefined ? undefined : ctx.text(o.published, `${at}.published`);
    ip = o.host_ip === undefined ? undefined : ctx.text(o.host_ip, `${at}.host_ip`);
    proto = o.protocol === undefined ? 'tcp' : ctx.text(o.protocol, `${at}.protocol`);
  } else return ctx.invalid(at, 'expected a port number, a string or a mapping');
  if (/-/.test(target) || /-/.test(published ?? '')) ctx.unsupported(at, 'port ranges are not supported');
  const port = Number(target);
  if (!/^\d{1,5}$/.test(target) || port < 1 || port > 65535)
    ctx.invalid(at, `${JSON.stringify(target)} is not a port`);
  if (!['tcp', 'udp'].includes(proto)) ctx.unsupported(at, `protocol ${proto} is not supported (tcp or udp)`);
  if (published !== undefined && published !== '' && Number(published) !== port)
    ctx.unsupported(
      at,
      `published port ${published} is not the container port ${port}: services listen on the host's network, there is no port mapping`,
    );
  if (ip !== undefined && ip !== '' && !['0.0.0.0', '[::]', '::'].includes(ip))
    ctx.unsupported(
      at,
      `publishing on ${ip} only is not supported: the service chooses the address it listens on`,
    );
  return { port, tcp: proto === 'tcp' };
}

const PATH = /^(\/(?!\.\.?(\/|$))[^/\0]+)+$/;

/** A `volumes` entry: a named (`source` set) or anonymous volume at `target`; binds and tmpfs refused. */
export function parseVolume(m: unknown, at: string, ctx: Ctx): { target: string; source?: string } {
  let source: string | undefined;
  let target: string;
  if (typeof m === 'string') {
    const parts = ctx.text(m, at).split(':');
    if (parts.length > 3) ctx.invalid(at, `${JSON.stringify(m)} is not [SOURCE:]TARGET[:MODE]`);
    const mode = parts.length === 3 ? parts[2] : undefined;
    if (parts.length === 1) target = parts[0] as string;
    else [source, target = ''] = parts as [string, string];
    if (mode !== undefined && mode !== 'rw')
      ctx.unsupported(at, `mode ${mode} is not supported (a volume is read-write)`);
  } else if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
    const o = m as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!['type', 'source', 'target', 'read_only'].includes(k))
        ctx.unsupported(`${at}.${k}`, 'not supported');
    if (o.type !== 'volume')
      ctx.unsupported(`${at}.type`, `${JSON.stringify(o.type)} volumes are not supported (type volume only)`);
    if (o.read_only === true) ctx.unsupported(`${at}.read_only`, 'a volume is read-write');
    source = o.source === undefined ? undefined : ctx.text(o.source, `${at}.source`);
    target = o.target === undefined ? '' : ctx.text(o.target, `${at}.target`);
  } else return ctx.invalid(at, 'expected a string or a mapping');
  if (source !== undefined && /^[./~]/.test(source))
    ctx.unsupported(at, `bind mount of ${source}: a layer's files come from its image; use a named volume`);
  if (source !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source))
    ctx.invalid(at, `${JSON.stringify(source)} is not a volume name`);
  const t = target.length > 1 ? target.replace(/\/+$/, '') : target;
  if (!PATH.test(t)) ctx.invalid(at, `${JSON.stringify(target)} is not an absolute path without . or ..`);
  return { target: t, ...(source === undefined ? {} : { source }) };
}

/** A healthcheck as readiness (an exec probe); what compose does beyond that is noted. */
export function healthReadiness(
  v: unknown,
  at: string,
  ctx: Ctx & { notes: string[] },
): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return ctx.invalid(at, 'expected a mapping');
  const h = v as Record<string, unknown>;
  for (const k of Object.keys(h))
    if (!['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'].includes(k))
      ctx.unsupported(`${at}.${k}`, 'not a healthcheck key');
  if (h.disable === true) return undefined;
  let command: string[];
  if (typeof h.test === 'string') command = ['/bin/sh', '-c', ctx.text(h.test, `${at}.test`)];
  else if (Array.isArray(h.test)) {
    const [kind, ...rest] = h.test.map((x, i) => ctx.text(x, `${at}.test[${i}]`));
    if (kind === 'NONE') return undefined;
    if (kind === 'CMD') command = rest;
    else if (kind === 'CMD-SHELL') command = ['/bin/sh', '-c', rest.join(' ')];
    else return ctx.invalid(`${at}.test[0]`, 'expected CMD, CMD-SHELL or NONE');
  } else return ctx.invalid(`${at}.test`, 'expected a string or a list');
  if (command.length === 0 || command[0] === '') ctx.invalid(`${at}.test`, 'names no command');
  const interval =
    h.interval === undefined
      ? 0.1
      : durationSeconds(ctx.text(h.interval, `${at}.interval`), `${at}.interval`, ctx.invalid);
  for (const k of ['timeout', 'retries', 'start_period', 'start_interval'])
    if (h[k] !== undefined) ctx.notes.push(`${at}.${k}: not mapped (readiness waits up to timeoutStartSec)`);
  ctx.notes.push(`${at}: the check is readiness: it is not run once the service is ready`);
  return { type: 'exec', command, intervalSec: Math.min(Math.max(interval, 0.01), 3600) };
}
