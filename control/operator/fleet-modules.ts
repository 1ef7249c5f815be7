// The modules known to the fleet (doc/commands.md, "Modules"): read from each peer's last signed
// status, verified here (the broker's copy could lie), grouped by module name and manifest
// digest. Also the arguments of `mway module run`: `--arg k=v` and `--args-file` turned into one
// object typed by the action's schema and checked against it before anything is signed — the
// peer checks again; this check only spares a round trip and names the argument at once.
import { readFile } from 'node:fs/promises';
import { schema } from '../../common/index.ts';
import type { Envelope } from '../../keys/index.ts';
import {
  type ModuleAction,
  moduleValueSchema,
  readModuleAction,
  VERB_NAME,
  type ValueSchema,
} from '../../layers/index.ts';
import { verifyStatus } from '../wire/index.ts';
import type { OperatorClient, PeerView } from './operator-client.ts';
import { OperatorError } from './operator-error.ts';

export type ActionInfo = Pick<
  ModuleAction,
  'name' | 'description' | 'args' | 'privileges' | 'output' | 'timeoutSec'
>;

/** One module (one manifest) as the peers that run it report it. */
export interface FleetModule {
  name: string;
  version: string;
  manifest: string;
  verb?: { name: string; description: string };
  actions: ActionInfo[];
  peers: string[];
}

interface StatusLayer {
  name?: unknown;
  version?: unknown;
  state?: unknown;
  kind?: unknown;
  module?: { manifest?: unknown; verb?: unknown; actions?: unknown };
}

/**
 * Every active module of every peer whose status verifies, one entry per name and manifest. A
 * signed status is still only the peer's word: a module entry whose shape is not one a manifest
 * could hold (actions, verb, digest) is left out, never trusted as typed.
 */
export function fleetModules(
  c: Pick<OperatorClient, 'anchors' | 'crls'>,
  peers: readonly PeerView[],
): FleetModule[] {
  const by = new Map<string, FleetModule>();
  for (const p of peers) {
    if (p.status === null || p.status === undefined) continue;
    let layers: unknown;
    try {
      const s = verifyStatus(p.status as Envelope, { anchors: c.anchors, crls: c.crls }).payload;
      if (s.peer !== p.peerId) continue;
      layers = s.layers;
    } catch {
      continue;
    }
    if (!Array.isArray(layers)) continue;
    for (const l of layers as StatusLayer[]) {
      const m = l.module;
      if (l.kind !== 'module' || l.state !== 'active' || typeof m !== 'object' || m === null) continue;
      if (typeof l.name !== 'string' || typeof l.version !== 'string') continue;
      if (typeof m.manifest !== 'string' || !/^[0-9a-f]{64}$/.test(m.manifest)) continue;
      if (!Array.isArray(m.actions) || m.actions.length > 256) continue;
      const actions = m.actions.map(readModuleAction);
      if (actions.some((a) => a === undefined)) continue;
      const verb = m.verb as { name?: unknown; description?: unknown } | undefined;
      if (verb !== undefined && (typeof verb.name !== 'string' || !VERB_NAME.test(verb.name))) continue;
      const key = `${l.name}\0${m.manifest}`;
      const known = by.get(key);
      if (known !== undefined) {
        known.peers.push(p.peerId);
        continue;
      }
      by.set(key, {
        name: l.name,
        version: l.version,
        manifest: m.manifest,
        ...(typeof verb?.name === 'string'
          ? { verb: { name: verb.name, description: String(verb.description ?? '').slice(0, 256) } }
          : {}),
        actions: actions as ActionInfo[],
        peers: [p.peerId],
      });
    }
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/** The module of that name, or the one whose verb that is; E_MODULE_UNKNOWN naming what there is. */
export function findModule(all: readonly FleetModule[], name: string, by: 'name' | 'verb'): FleetModule[] {
  const found = all.filter((m) => (by === 'name' ? m.name === name : m.verb?.name === name));
  if (found.length === 0) {
    const known =
      by === 'name'
        ? [...new Set(all.map((m) => m.name))]
        : [...new Set(all.flatMap((m) => (m.verb === undefined ? [] : [m.verb.name])))];
    throw new OperatorError(
      by === 'name' ? 'E_MODULE_UNKNOWN' : 'E_VERB_UNKNOWN',
      `No peer reports a module ${by === 'name' ? 'named' : 'with the verb'} ${JSON.stringify(name)} (known: ${known.join(', ') || 'none'}; see mway module list)`,
    );
  }
  return found;
}

/** The action of a module, or E_MODULE_ACTION_UNKNOWN naming the module's actions. */
export function findAction(m: FleetModule, action: string): ActionInfo {
  const a = m.actions.find((x) => x.name === action);
  if (a === undefined) {
    throw new OperatorError(
      'E_MODULE_ACTION_UNKNOWN',
      `Module ${m.name} ${m.version} has no action ${JSON.stringify(action)} (it has: ${m.actions.map((x) => x.name).join(', ') || 'none'})`,
    );
  }
  return a;
}

function argError(message: string, field?: string): OperatorError {
  return new OperatorError('E_MODULE_ARGS', message, field === undefined ? {} : { details: { field } });
}

/** `--arg NAME=VALUE` typed by the schema's property: numbers, booleans, repeated for arrays. */
function typed(prop: ValueSchema | undefined, name: string, text: string): unknown {
  const type = prop?.type === 'array' ? prop.items.type : prop?.type;
  if (type === 'integer' || type === 'number') {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n))
      throw argError(`--arg ${name}: ${JSON.stringify(text)} is not a number`, name);
    return n;
  }
  if (type === 'boolean') {
    if (text !== 'true' && text !== 'false')
      throw argError(`--arg ${name}: expected true or false, got ${JSON.stringify(text)}`, name);
    return text === 'true';
  }
  if (type === 'object' || type === 'array') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw argError(
        `--arg ${name}: ${type === 'array' ? 'an item that is an array or object' : 'an object'} is given as JSON`,
        name,
      );
    }
  }
  return text;
}

/**
 * The action's arguments: `--args-file` (a JSON object) first, then each `--arg NAME=VALUE` over
 * it, checked against the action's schema (E_MODULE_ARGS naming the argument).
 */
export async function actionArgs(
  m: FleetModule,
  a: ActionInfo,
  pairs: readonly string[],
  file: string | undefined,
): Promise<Record<string, unknown>> {
  let args: Record<string, unknown> = {};
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw argError(`Cannot read --args-file ${file}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw argError(`--args-file ${file} does not hold a JSON object`);
    args = parsed as Record<string, unknown>;
  }
  const props = a.args.properties;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw argError(`--arg must be NAME=VALUE, got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, eq);
    const value = typed(props[name], name, pair.slice(eq + 1));
    if (props[name]?.type === 'array') {
      const list = Array.isArray(args[name]) ? (args[name] as unknown[]) : [];
      args[name] = [...list, value];
    } else args[name] = value;
  }
  const r = schema.check(moduleValueSchema(a.args), args);
  if (!r.ok) {
    throw argError(
      `Arguments of ${m.name}.${a.name}: ${r.issue.keyPath}: ${r.issue.problem} (see mway module info ${m.name})`,
      r.issue.keyPath,
    );
  }
  return args;
}

/** The schema of an action's arguments in one line per argument, for `module info` and a verb's help. */
export function argsHelp(a: ActionInfo): string[] {
  const req = new Set(a.args.required ?? []);
  return Object.entries(a.args.properties).map(([k, p]) => {
    const type = p.type === 'array' ? `${p.items.type}[]` : p.type;
    const limits = [
      'enum' in p && p.enum !== undefined ? `one of ${p.enum.join('|')}` : '',
      'minimum' in p && p.minimum !== undefined ? `≥ ${p.minimum}` : '',
      'maximum' in p && p.maximum !== undefined ? `≤ ${p.maximum}` : '',
      'pattern' in p && p.pattern !== undefined ? `/${p.pattern}/` : '',
    ].filter((x) => x !== '');
    return `  --arg ${k}=${type}${req.has(k) ? ' (required)' : ''}${limits.length > 0 ? `  ${limits.join(', ')}` : ''}${p.description === undefined ? '' : `  ${p.description}`}`;
  });
}
