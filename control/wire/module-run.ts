// The `module.run` command (doc/commands.md, "Modules"): which module's action to run, with which
// arguments, optionally bound to the module's manifest digest. What the operator's scope must
// name is derived from it: `module:<layer>.<action>` (or `module:<layer>` for all of a module's
// actions); `*` never covers a module, whose actions are code the operator did not write.
import { ControlError } from './control-error.ts';

export const MODULE_RUN = 'module.run';

export interface ModuleRunArgs {
  /** The module layer's name. */
  module: string;
  action: string;
  /** The action's arguments, checked against its schema on the peer. */
  args: Record<string, unknown>;
  /** sha256 of the module's manifest as the operator saw it: the peer refuses another one. */
  manifest?: string;
}

const LAYER = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function bad(message: string, field: string): never {
  throw new ControlError('E_CMD_MALFORMED', `Malformed module.run command: ${message}`, { path: field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of `module.run`'s arguments (E_CMD_MALFORMED naming the field). */
export function parseModuleRunArgs(a: Record<string, unknown>): ModuleRunArgs {
  for (const k of Object.keys(a))
    if (!['module', 'action', 'args', 'manifest'].includes(k))
      bad(`unknown field ${JSON.stringify(k)}`, `args.${k}`);
  if (typeof a.module !== 'string' || !LAYER.test(a.module)) bad('module is not a layer name', 'args.module');
  if (typeof a.action !== 'string' || !LAYER.test(a.action))
    bad('action is not an action name', 'args.action');
  if (!isObject(a.args)) bad('args is not an object', 'args.args');
  if (a.manifest !== undefined && (typeof a.manifest !== 'string' || !/^[0-9a-f]{64}$/.test(a.manifest)))
    bad('manifest is not 64 lowercase hex digits', 'args.manifest');
  return {
    module: a.module,
    action: a.action,
    args: a.args,
    ...(a.manifest === undefined ? {} : { manifest: a.manifest }),
  };
}

/** The scope entry a module action needs: `module:<layer>.<action>`. */
export function moduleScope(module: string, action: string): string {
  return `module:${module}.${action}`;
}

/** Whether scope entries cover `module:<layer>.<action>`: that entry, or `module:<layer>`. */
export function scopeCoversModule(actions: readonly string[], module: string, action: string): boolean {
  return actions.includes(moduleScope(module, action)) || actions.includes(`module:${module}`);
}
