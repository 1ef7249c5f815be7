// Runs one action of an active module (doc/commands.md, "Modules"): the arguments checked
// against the action's schema, then the action's argv in the module's own sandbox — its root,
// only the data, devices, network and capabilities its signed manifest declares, its uid —
// bounded in time and output, and its stdout read as one JSON value (checked against the output
// schema when it declares one). The sandbox is the services' (agent/services/sandbox.ts), as PID 1
// of one more PID namespace, so a timeout kills everything the action started.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { isMilkyWayError, requireTool, run, schema } from '../../common/index.ts';
import { canonicalJson } from '../../keys/index.ts';
import type { ModuleAction } from '../../layers/index.ts';
import type { ModuleRunOutput, ModuleRunRequest } from '../core/agent-api.ts';
import { AgentError } from '../core/agent-error.ts';
import { type LayersModule, loadLayersModule, type Manifest } from '../layers/layers-contract.ts';

type ValidatorOf = LayersModule['moduleValueSchema'];

import { DATA_IN_SANDBOX } from '../layers/data-dirs.ts';
import type { Placement } from '../services/placement.ts';
import { bwrapArgs, type SandboxSpec } from '../services/sandbox.ts';
import { REAPER } from '../services/sandbox-runner.ts';
import type { Bind } from '../services/unit-spec.ts';

const STDERR_TAIL = 4096;

/** sha256 of the manifest's canonical JSON (defaults filled, as the packed layer.json holds it). */
export function manifestDigest(m: Manifest): string {
  return createHash('sha256')
    .update(canonicalJson(JSON.parse(JSON.stringify(m)) as Record<string, unknown>))
    .digest('hex');
}

/** The layer's data binds cut down to what the action declares; nothing else is bound in. */
export function actionBinds(binds: readonly Bind[], data: ModuleAction['privileges']['data']): Bind[] {
  const allowed = new Set<string>([
    ...(data.private ? [DATA_IN_SANDBOX.secure] : []),
    ...(data.common ? [DATA_IN_SANDBOX.common] : []),
    ...data.groups.map((g) => `${DATA_IN_SANDBOX.group}/${g}`),
  ]);
  return binds.filter((b) => allowed.has(b.dest));
}

/** The sandbox of one action: exactly its declared privileges. */
export function actionSandbox(
  module: string,
  action: ModuleAction,
  where: Placement,
): { spec: SandboxSpec; devices: string[] } {
  const p = action.privileges;
  const caps = [...p.capabilities, ...(p.network === 'admin' ? ['CAP_NET_ADMIN'] : [])];
  return {
    spec: {
      layer: module,
      root: where.root,
      binds: actionBinds(where.binds, p.data),
      capabilityBoundingSet: caps,
      privateNetwork: p.network === 'none',
      workingDirectory: '/',
      environment: { MWAY_MODULE: module, MWAY_ACTION: action.name },
      uid: p.user === 'root' ? 0 : where.uid,
      gid: p.user === 'root' ? 0 : where.gid,
      // Only the groups whose data the action declared (actionBinds binds only those dirs).
      supplementaryGids: p.data.groups.flatMap((g) => {
        const gid = where.groupGids[g];
        return gid === undefined ? [] : [gid];
      }),
      execStart: action.argv,
      ...(where.selinux === undefined
        ? {}
        : { selinuxLabel: where.selinux.process, selinuxFileLabel: where.selinux.files }),
    },
    devices: p.devices,
  };
}

function find(manifest: Manifest, req: ModuleRunRequest): ModuleAction {
  const action = manifest.actions.find((a) => a.name === req.action);
  if (action === undefined) {
    throw new AgentError(
      'E_MODULE_ACTION_UNKNOWN',
      `Module ${req.module} has no action ${JSON.stringify(req.action)} (it has: ${manifest.actions.map((a) => a.name).join(', ') || 'none'})`,
    );
  }
  return action;
}

/** Checks `req` against the module's manifest: its digest when bound, the action, the arguments. */
export function checkRequest(
  manifest: Manifest,
  req: ModuleRunRequest,
  validator: ValidatorOf,
): ModuleAction {
  if (req.manifest !== undefined) {
    const here = manifestDigest(manifest);
    if (here !== req.manifest) {
      throw new AgentError(
        'E_MODULE_DIGEST',
        `Module ${req.module} here is ${manifest.version} with manifest ${here.slice(0, 12)}, the command is for manifest ${req.manifest.slice(0, 12)}`,
        { details: { here, command: req.manifest } },
      );
    }
  }
  const action = find(manifest, req);
  const r = schema.check(validator(action.args), req.args);
  if (!r.ok) {
    throw new AgentError(
      'E_MODULE_ARGS',
      `Arguments of ${req.module}.${req.action}: ${r.issue.keyPath}: ${r.issue.problem}`,
      { details: { field: r.issue.keyPath } },
    );
  }
  return action;
}

function parseOutput(
  req: ModuleRunRequest,
  action: ModuleAction,
  bytes: Uint8Array,
  validator: ValidatorOf,
): unknown {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new AgentError(
      'E_MODULE_OUTPUT',
      `${req.module}.${req.action} printed ${bytes.length === 0 ? 'nothing' : 'something that is not one UTF-8 JSON value'} on stdout: ${(e as Error).message}`,
    );
  }
  if (action.output.schema !== undefined) {
    const r = schema.check(validator(action.output.schema), value);
    if (!r.ok) {
      throw new AgentError(
        'E_MODULE_OUTPUT',
        `Output of ${req.module}.${req.action} does not match its schema: ${r.issue.keyPath}: ${r.issue.problem}`,
        { details: { field: r.issue.keyPath } },
      );
    }
  }
  return value;
}

/**
 * Runs the action; resolves with its output when it exits 0, and with `failure` set (the result
 * is then `failed`, its output kept) when it exits non-zero. Throws AgentError otherwise.
 */
export async function runModuleAction(o: {
  manifest: Manifest;
  placement: Placement;
  request: ModuleRunRequest;
  selinux: boolean;
}): Promise<{ output: ModuleRunOutput; failure?: { code: 'E_MODULE_EXIT'; message: string } }> {
  const { manifest, request: req } = o;
  // layers/ is loaded with the first layer (layers-contract.ts), so this costs nothing new.
  const validator = (await loadLayersModule()).moduleValueSchema;
  const action = checkRequest(manifest, req, validator);
  for (const d of action.privileges.devices) {
    try {
      if (!(await stat(d)).isCharacterDevice() && !(await stat(d)).isBlockDevice())
        throw new Error('not a device');
    } catch (e) {
      throw new AgentError(
        'E_MODULE_DEVICE',
        `${req.module}.${req.action} needs ${d}, which this peer has not: ${(e as Error).message}`,
      );
    }
  }
  const { spec, devices } = actionSandbox(manifest.name, action, o.placement);
  const bwrap = await requireTool('bwrap');
  await requireTool('setpriv');
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run('unshare', [...REAPER, bwrap, ...bwrapArgs(spec, { devices, selinux: o.selinux })], {
      timeout: action.timeoutSec * 1000,
      input: JSON.stringify(req.args),
      binary: true,
      maxBuffer: action.output.maxBytes,
      reject: false,
      extendEnv: false,
      env: {},
    });
  } catch (e) {
    if (isMilkyWayError(e) && e.code === 'E_TOOL_TIMEOUT')
      throw new AgentError(
        'E_MODULE_TIMEOUT',
        `${req.module}.${req.action} ran longer than ${action.timeoutSec} s and was killed`,
        { cause: e },
      );
    if (isMilkyWayError(e) && e.code === 'E_TOOL_OUTPUT_LIMIT')
      throw new AgentError(
        'E_MODULE_OUTPUT_LIMIT',
        `${req.module}.${req.action} printed more than ${action.output.maxBytes} bytes and was killed`,
        { cause: e },
      );
    throw e;
  }
  const stdout = r.stdoutBytes ?? new Uint8Array();
  const base = {
    module: manifest.name,
    version: manifest.version,
    action: action.name,
    exitCode: r.exitCode,
  };
  if (r.exitCode !== 0) {
    // Whatever it printed is kept for the operator, parsed when it is JSON.
    let result: unknown = Buffer.from(stdout).toString('utf8');
    try {
      result = JSON.parse(result as string);
    } catch {
      // Not JSON: the text as it is.
    }
    return {
      output: { ...base, result, stderr: r.stderr.slice(-STDERR_TAIL) },
      failure: { code: 'E_MODULE_EXIT', message: `${req.module}.${req.action} exited ${r.exitCode}` },
    };
  }
  return { output: { ...base, result: parseOutput(req, action, stdout, validator) } };
}
