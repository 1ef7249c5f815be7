// `milkyway-agent ctl`: talks to a running agent over its local D-Bus API
// (org.milkyway.Agent1, doc/agent-dbus.md). Exit codes: 0 ok, 1 the agent refused or the
// operation failed, 2 usage, 3 no agent/bus reachable, 4 permission denied.
import { defineCommand } from 'citty';
import { resolve } from 'node:path';
import { commonArgs, jsonLine, output, UsageError } from '../../common/index.ts';
import type { AgentStatus, CoreosStatus, ServiceInfo, ServiceSelinux } from '../core/agent-api.ts';
import { type AgentClient, type AgentSignal, connectAgent } from '../dbus/dbus-client.ts';
import { kernelView, selinuxText } from './selinux-text.ts';

const busArgs = {
  ...commonArgs,
  bus: {
    type: 'string',
    description: 'D-Bus address of the bus the agent is on (default: the system bus)',
    valueHint: 'ADDRESS',
  },
} as const;

async function withAgent<T>(bus: string | undefined, fn: (client: AgentClient) => Promise<T>): Promise<T> {
  const client = await connectAgent({ address: bus === '' ? undefined : bus });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  const { code, message } = value as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && typeof message === 'string') return `${code}: ${message}`;
  return JSON.stringify(value);
}

/** A plain table of `columns` (those present in at least one row), like `ps`. */
function table(rows: unknown[], columns: readonly string[]): string {
  const records = rows.map((r) =>
    typeof r === 'object' && r !== null ? (r as Record<string, unknown>) : {},
  );
  const shown = columns.filter((c) => records.some((r) => r[c] !== undefined));
  if (shown.length === 0 || records.length === 0)
    return records.length === 0 ? '(none)' : JSON.stringify(rows);
  const cells = records.map((r) => shown.map((c) => cell(r[c])));
  const widths = shown.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(shown.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/** The A/B slots of `status` as a person reads them (doc/how-to-update.md). */
function slotsText(v: unknown): string {
  const c = v as CoreosStatus;
  if (!c.available) return `unavailable (${c.reason})`;
  const slots = c.slots.map((s) => {
    const st = s.successful
      ? 'good'
      : s.bootable
        ? `trial, ${s.tries} tries left`
        : s.version === null
          ? 'empty'
          : 'not bootable';
    return `${s.slot}${s.slot === c.running ? ' (running)' : ''}: ${s.label ?? '_empty'} ${st}, priority ${s.priority}`;
  });
  const lines = [
    `running slot ${c.running}; ${slots.join('; ')}; rollback floor ${c.rollbackFloor}; health gate ${c.gate.state}${c.gate.reason === undefined ? '' : ` (${c.gate.reason})`}`,
  ];
  if (c.trial !== undefined)
    lines.push(`  armed: ${c.trial.version} in slot ${c.trial.slot} (boots at the next reboot)`);
  if (c.lastGood !== undefined)
    lines.push(`  last marked good: ${c.lastGood.version} in slot ${c.lastGood.slot} at ${c.lastGood.at}`);
  if (c.lastRollback !== undefined)
    lines.push(
      `  last rollback: ${c.lastRollback.version} in slot ${c.lastRollback.slot} at ${c.lastRollback.at}: ${c.lastRollback.reason}`,
    );
  return lines.join('\n');
}

/** A service row with its SELinux domain and pair as columns (`ctl list`, `ctl status`). */
function serviceRow(row: unknown): Record<string, unknown> {
  const s = row as ServiceInfo;
  return { ...s, domain: s.selinux?.domain, level: s.selinux?.level, kernel: kernelView(s.selinux) };
}

/** `key: value` lines for one record. */
function details(value: unknown): string {
  if (typeof value !== 'object' || value === null) return cell(value);
  return Object.entries(value)
    .map(([k, v]) => {
      if (typeof v !== 'object' || v === null) return `${k}: ${cell(v)}`;
      if (k === 'coreos') return `${k}: ${slotsText(v)}`;
      if (k === 'selinux' && 'mode' in v) return `${k}: ${selinuxText(v)}`;
      if (k === 'selinux' && 'context' in v)
        return `${k}: ${cell(v.context)} (kernel: ${kernelView(v as ServiceSelinux) ?? '-'})`;
      return `${k}: ${cell(v)}`;
    })
    .join('\n');
}

const LAYER_COLUMNS = ['name', 'version', 'kind', 'state', 'verity', 'signers', 'services', 'error'] as const;
const SERVICE_COLUMNS = [
  'name',
  'layer',
  'state',
  'pid',
  'restarts',
  'since',
  'domain',
  'level',
  'error',
] as const;
// Each service's SELinux domain and pair under `ctl status`; KERNEL is what /proc says of its processes.
const SELINUX_COLUMNS = ['name', 'state', 'domain', 'level', 'kernel'] as const;

const list = defineCommand({
  meta: { name: 'list', description: 'List installed layers and their services' },
  args: busArgs,
  async run({ args }) {
    const [layers, services] = await withAgent(args.bus, (c) =>
      Promise.all([c.listLayers(), c.listServices()]),
    );
    output(args.json, { layers, services }, () =>
      [
        `LAYERS\n${table(layers, LAYER_COLUMNS)}`,
        `SERVICES\n${table(services.map(serviceRow), SERVICE_COLUMNS)}`,
      ].join('\n\n'),
    );
    return 0;
  },
});

const status = defineCommand({
  meta: { name: 'status', description: "Show the agent's status, or one service's" },
  args: { ...busArgs, service: { type: 'positional', required: false, description: 'Service name' } },
  async run({ args }) {
    const name = args.service;
    if (name !== undefined) {
      const value = await withAgent(args.bus, (c) => c.getService(name));
      output(args.json, value, () => details(value));
      return 0;
    }
    // --json is GetStatus as it is; a person also sees each service's domain and pair.
    const [value, services] = await withAgent(args.bus, (c) =>
      Promise.all([c.status(), args.json ? Promise.resolve([]) : c.listServices()]),
    );
    output(args.json, value, () =>
      (value as AgentStatus).selinux.mode === 'off'
        ? details(value)
        : `${details(value)}\n\nSELINUX\n${table(services.map(serviceRow), SELINUX_COLUMNS)}`,
    );
    return 0;
  },
});

const logs = defineCommand({
  meta: { name: 'logs', description: "Print a service's recent output" },
  args: {
    ...busArgs,
    service: { type: 'positional', required: true, description: 'Service name' },
    lines: {
      type: 'string',
      alias: 'n',
      description: 'How many recent lines (default: all kept, at most 10000)',
    },
  },
  async run({ args }) {
    const lines = args.lines === undefined ? 0 : Number(args.lines);
    if (!Number.isInteger(lines) || lines < 0 || lines > 0xffffffff) {
      throw new UsageError(
        `Invalid --lines ${JSON.stringify(args.lines)}: a non-negative integer is required`,
        'bad-value',
        '--lines',
      );
    }
    const entries = await withAgent(args.bus, (c) => c.logs(args.service, lines));
    output(args.json, entries, () => entries.map(logLine).join('\n'));
    return 0;
  },
});

function logLine(entry: unknown): string {
  if (typeof entry === 'string') return entry;
  if (typeof entry !== 'object' || entry === null) return cell(entry);
  const e = entry as Record<string, unknown>;
  const time = e.time ?? e.timestamp ?? e.ts;
  const stream = e.stream;
  const text = e.line ?? e.text ?? e.message;
  return [
    cell(time),
    typeof stream === 'string' ? stream : undefined,
    typeof text === 'string' ? text : cell(text),
  ]
    .filter((p) => p !== undefined && p !== '-')
    .join(' ');
}

function serviceAction(name: 'start' | 'stop' | 'restart', description: string) {
  return defineCommand({
    meta: { name, description },
    args: { ...busArgs, service: { type: 'positional', required: true, description: 'Service name' } },
    async run({ args }) {
      await withAgent(args.bus, (c) =>
        name === 'start'
          ? c.startService(args.service)
          : name === 'stop'
            ? c.stopService(args.service)
            : c.restartService(args.service),
      );
      output(args.json, { service: args.service, action: name }, () => `${name}: ${args.service}`);
      return 0;
    },
  });
}

const install = defineCommand({
  meta: { name: 'install', description: 'Verify, install and start a signed layer (.mwl)' },
  args: { ...busArgs, layer: { type: 'positional', required: true, description: 'Layer file (.mwl)' } },
  async run({ args }) {
    // The agent opens the file itself, so it needs a path that does not depend on our cwd.
    const path = resolve(args.layer);
    const layer = await withAgent(args.bus, (c) => c.installLayer(path));
    output(args.json, layer, () => `installed: ${details(layer).replace(/\n/g, ', ')}`);
    return 0;
  },
});

const remove = defineCommand({
  meta: { name: 'remove', description: 'Stop and remove an installed layer' },
  args: { ...busArgs, layer: { type: 'positional', required: true, description: 'Layer name' } },
  async run({ args }) {
    await withAgent(args.bus, (c) => c.removeLayer(args.layer));
    output(args.json, { layer: args.layer, action: 'remove' }, () => `removed: ${args.layer}`);
    return 0;
  },
});

const watch = defineCommand({
  meta: { name: 'watch', description: 'Print ServiceChanged and LayerChanged signals as they come' },
  args: {
    ...busArgs,
    count: { type: 'string', numeric: 'integer', description: 'Exit after this many signals' },
    timeout: { type: 'string', numeric: 'number', description: 'Exit after this many seconds' },
  },
  async run({ args }) {
    const count = args.count === undefined ? Number.POSITIVE_INFINITY : Number(args.count);
    const seconds = args.timeout === undefined ? undefined : Number(args.timeout);
    await withAgent(
      args.bus,
      (c) =>
        new Promise<void>((done, fail) => {
          let seen = 0;
          const timer = seconds === undefined ? undefined : setTimeout(done, seconds * 1000);
          const print = (s: AgentSignal): void => {
            if (args.json) jsonLine(s);
            else process.stdout.write(`${s.member} ${s.name} ${s.value}\n`);
            seen++;
            if (seen >= count) {
              if (timer !== undefined) clearTimeout(timer);
              done();
            }
          };
          c.watch(print).then(() => {
            // Tells a script the subscription is in place (stderr, so stdout stays the signals).
            process.stderr.write('watching\n');
          }, fail);
        }),
    );
    return 0;
  },
});

export default defineCommand({
  subCommands: {
    list,
    status,
    logs,
    start: serviceAction('start', 'Start a service'),
    stop: serviceAction('stop', 'Stop a service'),
    restart: serviceAction('restart', 'Restart a service'),
    install,
    remove,
    watch,
  },
});
