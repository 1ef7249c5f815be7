// Shared pieces of the fleet commands: the group/peer/target flags every command takes,
// connecting with the operator config, and printing a job (per-peer table, summary, exit code).
import { commonArgs, EXIT_FAIL, EXIT_OK, jsonLine, output } from '../../../common/index.ts';
import { type CommandAction, ControlError } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import {
  type JobReport,
  OperatorClient,
  type PeerReport,
  type PeerView,
  readOperatorConfig,
} from '../operator-client.ts';
import { batchSize, failBudget, parseTarget, peerTerm } from '../targets.ts';
import { coreosBrief } from './coreos-view.ts';
import { selinuxBrief, serviceDomain } from './selinux-view.ts';

export const targetArgs = {
  ...commonArgs,
  group: {
    type: 'string',
    alias: 'peer-group',
    description: 'Target group (or comma-separated groups); --peer-group is the same',
  },
  peer: {
    type: 'string',
    description: 'Target peer id(s), addresses or networks (10.10.0.42, 10.10.0.0/24), comma-separated',
  },
  target: {
    type: 'string',
    description:
      'Target expression: group:G, peer:P, addr:IP, net:CIDR, label:K=V, fact:K=V, globs, !exclusions',
  },
  'dry-run': { type: 'boolean', description: 'Show the resolved targets and stop' },
  batch: { type: 'string', description: 'Sliding window: N peers or N% at a time' },
  'max-fail': { type: 'string', description: 'Stop the rollout after more than N (or N%) failures' },
  timeout: { type: 'string', numeric: 'number', description: 'Seconds to wait for results (default 60)' },
  async: { type: 'boolean', description: 'Submit, print the job id and return' },
  static: {
    type: 'boolean',
    description: 'With --json: one document at the end instead of a JSON line per result',
  },
} as const;

export interface TargetFlags {
  group?: string | undefined;
  peer?: string | undefined;
  target?: string | undefined;
  json?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  batch?: string | undefined;
  'max-fail'?: string | undefined;
  timeout?: string | undefined;
  async?: boolean | undefined;
  static?: boolean | undefined;
}

/** The target expression from --group / --peer / --target (exactly one). */
export function targetOf(a: TargetFlags): string {
  const given = [a.group, a.peer, a.target].filter((x) => x !== undefined);
  if (given.length !== 1) throw usageError('Give exactly one of --group, --peer or --target');
  const expr =
    a.group !== undefined
      ? a.group
          .split(',')
          .map((g) => `group:${g.trim()}`)
          .join(',')
      : a.peer !== undefined
        ? a.peer
            .split(',')
            .map((p) => peerTerm(p))
            .join(',')
        : (a.target as string);
  parseTarget(expr);
  return expr;
}

export async function connect(): Promise<OperatorClient> {
  return OperatorClient.connect(await readOperatorConfig());
}

export async function withClient<T>(f: (c: OperatorClient) => Promise<T>): Promise<T> {
  const c = await connect();
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

/** The enrollment request `id` names: its request id, or the peer id of a pending one. */
export async function findEnrollmentRequest(c: OperatorClient, id: string): Promise<Record<string, unknown>> {
  const rows = ((await c.client.request('enrollment-list')).requests as Array<Record<string, unknown>>) ?? [];
  const row = rows.find((r) => r.requestId === id || (r.peerId === id && r.state === 'pending'));
  if (row === undefined) throw new ControlError('E_ENROLL_UNKNOWN', `No enrollment request ${id}`);
  return row;
}

function cell(s: string, w: number): string {
  return s.length >= w ? s : s + ' '.repeat(w - s.length);
}

/** A module action's output (agent/modules: module, version, action, exitCode, result, stderr). */
function moduleOutput(
  v: unknown,
):
  | { module: string; version: string; action: string; exitCode: number; result: unknown; stderr?: string }
  | undefined {
  if (typeof v !== 'object' || v === null || !('module' in v) || !('result' in v) || !('action' in v))
    return undefined;
  return v as ReturnType<typeof moduleOutput>;
}

function brief(v: unknown): string {
  if (v === undefined || v === null) return '';
  const mod = moduleOutput(v);
  if (mod !== undefined)
    return `${mod.module} ${mod.version} ${mod.action}, exit ${mod.exitCode}, result below`;
  if (serviceTable(v) !== undefined) return `${(v as unknown[]).length} service(s) below`;
  if (typeof v === 'object' && 'agent' in (v as object)) {
    // The `status` action: the agent's state and its service and layer counts.
    const a = (
      v as { agent: { state?: string; services?: { running?: number; total?: number; failed?: number } } }
    ).agent;
    const layers = (v as { layers?: unknown[] }).layers?.length ?? 0;
    const selinux = selinuxBrief(a);
    const slots = coreosBrief(a);
    return `${a.state ?? '?'}, services ${a.services?.running ?? 0}/${a.services?.total ?? 0} running (${a.services?.failed ?? 0} failed), ${layers} layer(s)${selinux === undefined ? '' : `, ${selinux}`}${slots === undefined ? '' : `, ${slots}`}`;
  }
  if (longOutput(v) !== undefined) return Array.isArray(v) ? `${v.length} line(s) below` : 'output below';
  if (typeof v === 'object' && 'state' in (v as object)) {
    // Idempotent actions say when nothing had to change (Salt's "unchanged").
    const o = v as { state: unknown; change?: unknown };
    return o.change === 'unchanged' ? `${String(o.state)} (unchanged)` : String(o.state);
  }
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `service list`'s answer (the agent's ServiceInfo rows) as a table: every service, none cut off. */
export function serviceTable(v: unknown): string | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const rows = v as Array<Record<string, unknown>>;
  if (!rows.every((s) => typeof s === 'object' && s !== null && 'name' in s && 'state' in s))
    return undefined;
  // With SELinux on the peer, each service's domain and category pair (its MCS level).
  const selinux = rows.some((s) => serviceDomain(s) !== undefined);
  const cols = [
    'SERVICE',
    'LAYER',
    'STATE',
    'PID',
    'RESTARTS',
    'SINCE',
    ...(selinux ? ['DOMAIN', 'LEVEL'] : []),
    'ERROR',
  ];
  const cells = rows.map((s) => {
    const d = serviceDomain(s);
    return [
      s.name,
      s.layer,
      s.state,
      s.pid,
      s.restarts,
      s.since,
      ...(selinux ? [d?.domain, d?.level] : []),
      s.error,
    ].map((x) => (x === undefined ? '' : String(x)));
  });
  const w = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  return [cols, ...cells]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(w[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function longOutput(v: unknown): string | undefined {
  const services = serviceTable(v);
  if (services !== undefined) return services;
  const mod = moduleOutput(v);
  if (mod !== undefined) {
    const err =
      mod.stderr === undefined || mod.stderr === '' ? '' : `\n[stderr]\n${mod.stderr.replace(/\n$/, '')}`;
    return `${JSON.stringify(mod.result, null, 2)}${err}`;
  }
  // The `status` action: its services, with their SELinux domains and pairs when on.
  if (typeof v === 'object' && v !== null && 'agent' in v && 'services' in v) return serviceTable(v.services);
  if (Array.isArray(v) && v.every((l) => typeof l === 'object' && l !== null && 'text' in l)) {
    return (v as Array<{ time: string; stream: string; text: string }>)
      .map((l) => `${l.time} ${l.stream} ${l.text}`)
      .join('\n');
  }
  if (typeof v === 'object' && v !== null && 'stdout' in v) {
    const o = v as { stdout: string; stderr: string; exitCode: number; truncated: boolean };
    const cut = (x: string) => x.replace(/\n$/, '');
    return `${cut(o.stdout)}${o.stderr === '' ? '' : `\n[stderr]\n${cut(o.stderr)}`}\n[exit ${o.exitCode}${o.truncated ? ', output truncated' : ''}]`;
  }
  return undefined;
}

function width(peers: readonly string[]): number {
  return Math.max(4, ...peers.map((p) => p.length)) + 2;
}

function tableHead(w: number): string {
  return `${cell('PEER', w)}${cell('OUTCOME', 11)}DETAIL`;
}

/** One peer's line of the table (printed as its result arrives). */
export function peerLine(p: PeerReport, w: number): string {
  const detail = p.code === undefined ? brief(p.output) : `${p.code}: ${p.message ?? ''}`;
  return `${cell(p.peer, w)}${cell(p.outcome, 11)}${detail}`.trimEnd();
}

/** What follows the table: each peer's long output (logs, command output), then the summary. */
function tail(r: JobReport): string[] {
  const lines: string[] = [];
  // Logs and command output are the point of those actions: print them under the table.
  for (const p of r.peers) {
    const text = longOutput(p.output);
    if (text !== undefined) lines.push('', `== ${p.peer} ==`, text.replace(/\n$/, ''));
  }
  const s = r.summary;
  lines.push(
    '',
    `job ${r.jobId}: ${s.targeted} targeted, ${s.succeeded} succeeded, ${s.failed} failed, ${s.noAnswer} no answer`,
  );
  return lines;
}

export function jobText(r: JobReport): string {
  if (r.dryRun === true) {
    return [
      `Would run ${r.action} on ${r.peers.length} peer(s) (${r.target}):`,
      ...r.peers.map((p) => `  ${p.peer}`),
    ].join('\n');
  }
  if (r.async === true) return `${r.jobId}\n`;
  const w = width(r.peers.map((p) => p.peer));
  return [tableHead(w), ...r.peers.map((p) => peerLine(p, w)), ...tail(r)].join('\n');
}

/**
 * Live table for a terminal or a pipe: the head once the job is submitted, each peer's line as
 * its verified result arrives, and at the end the peers that never answered, the outputs and
 * the summary. So the first answers show while the slowest peer is still working.
 */
export function liveTable(write: (s: string) => void) {
  let w = 4;
  const shown = new Set<string>();
  return {
    submitted(_id: string, peers: readonly string[]): void {
      w = width(peers);
      write(`${tableHead(w)}\n`);
    },
    result(p: PeerReport): void {
      shown.add(p.peer);
      write(`${peerLine(p, w)}\n`);
    },
    end(r: JobReport): void {
      const rest = r.peers.filter((p) => !shown.has(p.peer)).map((p) => peerLine(p, w));
      write(`${[...rest, ...tail(r)].join('\n')}\n`);
    },
  };
}

/**
 * `--json` on a fleet command, as JSON Lines (Salt's streaming `--out=json`): one
 * `{"type":"result","jobId",peer,outcome,code?,message?,output?}` line per peer as its verified
 * result arrives, the peers that never answered at the end, then one `{"type":"summary",…}`
 * line: jobId, action, target, summary counts (and `dryRun` with the resolved `peers`, or
 * `async`). `--static` keeps the one document printed at the end (Salt's `--static`).
 */
export function jsonLines(write: (s: string) => void) {
  const shown = new Set<string>();
  let jobId = '';
  const line = (v: Record<string, unknown>) => jsonLine(v, write);
  return {
    submitted(id: string): void {
      jobId = id;
    },
    result(p: PeerReport): void {
      shown.add(p.peer);
      line({ type: 'result', jobId, ...p });
    },
    end(r: JobReport): void {
      const head = { jobId: r.jobId, action: r.action, target: r.target };
      if (r.dryRun !== true && r.async !== true)
        for (const p of r.peers) if (!shown.has(p.peer)) line({ type: 'result', ...head, ...p });
      line({
        type: 'summary',
        ...head,
        ...(r.dryRun === true ? { dryRun: true, peers: r.peers.map((p) => p.peer) } : {}),
        ...(r.async === true ? { async: true } : {}),
        summary: r.summary,
      });
    },
  };
}

/** How --json / --static print a report: JSON Lines, one document, or the human table. */
export type JsonMode = 'lines' | 'static' | undefined;

export function jsonMode(a: { json?: boolean | undefined; static?: boolean | undefined }): JsonMode {
  if (a.static === true && a.json !== true)
    throw usageError('--static is an output form of --json: give both');
  return a.json !== true ? undefined : a.static === true ? 'static' : 'lines';
}

/**
 * Prints a report that is complete (a stored job, a layer sent in pieces) and returns the exit
 * code: 0 only when every targeted peer succeeded. `oneOfSeveral`: the verb runs several jobs
 * (`mway docker start`), so --json --static prints each report as one compact line, and the
 * output stays one envelope a line rather than documents run together.
 */
export function finish(r: JobReport, json: JsonMode, oneOfSeveral = false): number {
  if (json === 'lines') jsonLines((s) => process.stdout.write(s)).end(r);
  else if (json === 'static' && oneOfSeveral) jsonLine(r);
  else output(json === 'static', r, () => jobText(r));
  return exitOf(r);
}

function exitOf(r: JobReport): number {
  if (r.dryRun === true || r.async === true) return EXIT_OK;
  return r.summary.succeeded === r.summary.targeted ? EXIT_OK : EXIT_FAIL;
}

/** Runs one fleet command with the common flags. */
export async function runJob(
  a: TargetFlags,
  action: CommandAction,
  args: Record<string, unknown> | ((peers: PeerView[], c: OperatorClient) => Record<string, unknown>),
): Promise<number> {
  const target = targetOf(a);
  const json = jsonMode(a);
  // Flag errors before connecting: the real sizes are computed against the resolved targets.
  if (a.batch !== undefined) batchSize(a.batch, 1);
  if (a['max-fail'] !== undefined) failBudget(a['max-fail'], 1);
  const timeout = a.timeout === undefined ? 60 : Number(a.timeout);
  if (!(timeout > 0 && timeout <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
  return withClient(async (c) => {
    const write = (s: string) => process.stdout.write(s);
    const live =
      json === 'lines'
        ? jsonLines(write)
        : json === 'static' || a['dry-run'] === true || a.async === true
          ? undefined
          : liveTable(write);
    const report = await c.run({
      action,
      target,
      ...(typeof args === 'function' ? { argsFor: (peers) => args(peers, c) } : { args }),
      ...(a.batch === undefined ? {} : { batch: a.batch }),
      ...(a['max-fail'] === undefined ? {} : { maxFail: a['max-fail'] }),
      timeoutMs: timeout * 1000,
      async: a.async === true,
      dryRun: a['dry-run'] === true,
      ...(live === undefined
        ? {}
        : {
            onSubmitted: (id: string, peers: readonly string[]) => live.submitted(id, peers),
            onProgress: (_d: number, _t: number, r: PeerReport) => live.result(r),
          }),
    });
    if (live === undefined) return finish(report, json);
    live.end(report);
    return exitOf(report);
  });
}
