// `mway module list|info|verbs|run`: the modules the fleet reports (from the peers' signed
// statuses) and running their actions. `run NAME ACTION --target … [--arg k=v…] [--args-file F]`
// checks the arguments against the action's schema, binds the command to the module's manifest
// digest and sends `module.run`; the operator's certificate needs `module:NAME.ACTION` in its
// scope. `mway VERB ACTION …` (a module's verb, control/operator/bin/mway.ts) is `run` by verb.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_OK, output, values as all } from '../../../common/index.ts';
import { VERB_NAME } from '../../../layers/index.ts';
import { MODULE_RUN } from '../../wire/index.ts';
import {
  type ActionInfo,
  actionArgs,
  argsHelp,
  type FleetModule,
  findAction,
  findModule,
  fleetModules,
} from '../fleet-modules.ts';
import { type OperatorClient, readOperatorConfig } from '../operator-client.ts';
import { OperatorError, usageError } from '../operator-error.ts';
import { runJob, type TargetFlags, targetArgs, targetOf, withClient } from './shared.ts';

const privilegesLine = (a: ActionInfo): string => {
  const p = a.privileges;
  const parts = [
    `user ${p.user}`,
    `network ${p.network}`,
    ...(p.capabilities.length > 0 ? [`caps ${p.capabilities.join(',')}`] : []),
    ...(p.devices.length > 0 ? [`devices ${p.devices.join(',')}`] : []),
    ...(p.data.private ? ['data private'] : []),
    ...(p.data.common ? ['data common'] : []),
    ...p.data.groups.map((g) => `data group/${g}`),
  ];
  return `${parts.join('; ')}; timeout ${a.timeoutSec} s; output ≤ ${a.output.maxBytes} bytes`;
};

function infoText(m: FleetModule): string {
  const lines = [
    `${m.name} ${m.version}  manifest ${m.manifest.slice(0, 16)}  on ${m.peers.join(', ')}`,
    ...(m.verb === undefined ? [] : [`verb: mway ${m.verb.name}  ${m.verb.description}`]),
  ];
  for (const a of m.actions) {
    lines.push('', `${a.name}  ${a.description}`.trimEnd(), `  needs scope module:${m.name}.${a.name}`);
    lines.push(`  privileges: ${privilegesLine(a)}`);
    lines.push(...argsHelp(a));
  }
  return lines.join('\n');
}

const list = defineCommand({
  meta: { name: 'list', description: 'The modules the peers report (from their signed statuses)' },
  args: { ...commonArgs },
  run({ args }) {
    return withClient(async (c) => {
      const mods = fleetModules(c, await c.peers());
      output(args.json, mods, () =>
        mods.length === 0
          ? 'No peer reports a module.'
          : [
              'MODULE  VERSION  VERB  ACTIONS  PEERS',
              ...mods.map(
                (m) =>
                  `${m.name}  ${m.version}  ${m.verb?.name ?? '-'}  ${m.actions.map((a) => a.name).join(',')}  ${m.peers.join(',')}`,
              ),
            ].join('\n'),
      );
      return EXIT_OK;
    });
  },
});

const info = defineCommand({
  meta: { name: 'info', description: "A module's actions: arguments, privileges, bounds, scope" },
  args: { ...commonArgs, name: { type: 'positional', required: true, description: 'Module name' } },
  run({ args }) {
    return withClient(async (c) => {
      const found = findModule(fleetModules(c, await c.peers()), String(args.name), 'name');
      output(args.json, found, () => found.map(infoText).join('\n\n'));
      return EXIT_OK;
    });
  },
});

const verbs = defineCommand({
  meta: { name: 'verbs', description: 'The mway verbs the fleet’s modules add' },
  args: { ...commonArgs },
  run({ args }) {
    return withClient(async (c) => {
      const rows = fleetModules(c, await c.peers()).flatMap((m) =>
        m.verb === undefined
          ? []
          : [{ verb: m.verb.name, module: m.name, version: m.version, description: m.verb.description }],
      );
      output(args.json, rows, () =>
        rows.length === 0
          ? 'No module of the fleet adds a verb.'
          : rows.map((r) => `${r.verb}  ${r.module} ${r.version}  ${r.description}`).join('\n'),
      );
      return EXIT_OK;
    });
  },
});

const runArgs = {
  ...targetArgs,
  arg: {
    type: 'string',
    repeatable: true,
    description: 'An argument NAME=VALUE (repeatable; repeat for a list)',
  },
  'args-file': { type: 'string', description: 'A JSON file with the arguments object (--arg adds to it)' },
  'any-version': {
    type: 'boolean',
    description: 'Run on peers of different module versions (the command is then not bound to one manifest)',
  },
} as const;

interface RunFlags extends TargetFlags {
  arg?: string | string[] | undefined;
  'args-file'?: string | undefined;
  'any-version'?: boolean | undefined;
}

/** The module version(s) the targets run: the manifest the command is bound to, and the schema. */
async function pick(
  c: OperatorClient,
  candidates: FleetModule[],
  a: RunFlags,
): Promise<{ module: FleetModule; bind: boolean; all: FleetModule[] }> {
  const target = targetOf(a);
  const dry = await c.run({ action: MODULE_RUN, target, dryRun: true });
  const peers = new Set(dry.peers.map((p) => p.peer));
  const inTarget = candidates.filter((m) => m.peers.some((p) => peers.has(p)));
  const first = inTarget[0];
  if (first === undefined) {
    throw new OperatorError(
      'E_MODULE_UNKNOWN',
      `No targeted peer reports module ${candidates[0]?.name ?? '?'} (it is on ${candidates.flatMap((m) => m.peers).join(', ')})`,
    );
  }
  if (inTarget.length > 1 && a['any-version'] !== true) {
    throw new OperatorError(
      'E_MODULE_VERSIONS',
      `The targets run ${inTarget.map((m) => `${m.name} ${m.version} (${m.manifest.slice(0, 12)}) on ${m.peers.filter((p) => peers.has(p)).join(',')}`).join(' and ')}; target one version or pass --any-version`,
    );
  }
  return { module: first, bind: inTarget.length === 1, all: inTarget };
}

/** `module run` and a verb: find the module, check the arguments, sign and send. */
export async function runModuleCommand(
  by: 'name' | 'verb',
  name: string,
  action: string,
  a: RunFlags,
): Promise<number> {
  const pairs = all(a.arg);
  const file = a['args-file'];
  const chosen = await withClient(async (c) => {
    const candidates = findModule(fleetModules(c, await c.peers()), name, by);
    const p = await pick(c, candidates, a);
    // Checked against every version targeted: each peer checks against its own.
    let args: Record<string, unknown> = {};
    for (const m of p.all) args = await actionArgs(m, findAction(m, action), pairs, file);
    return { m: p.module, bind: p.bind, args };
  });
  return runJob(a, MODULE_RUN, {
    module: chosen.m.name,
    action,
    args: chosen.args,
    ...(chosen.bind ? { manifest: chosen.m.manifest } : {}),
  });
}

const run = defineCommand({
  meta: {
    name: 'run',
    description: "Run a module's action on a group or peers (needs the scope module:NAME.ACTION)",
  },
  args: {
    ...runArgs,
    name: { type: 'positional', required: true, description: 'Module name' },
    action: { type: 'positional', required: true, description: 'Action name' },
  },
  run({ args }) {
    return runModuleCommand('name', String(args.name), String(args.action), args);
  },
});

/** `mway VERB [ACTION …]`, reached through the dispatch in bin/mway.ts. */
const verb = defineCommand({
  meta: { name: 'verb', description: "A module's verb: mway VERB ACTION is mway module run MODULE ACTION" },
  args: {
    ...runArgs,
    verb: { type: 'positional', required: true, description: 'The verb' },
    action: { type: 'positional', required: false, description: 'Action name (none: the verb’s help)' },
  },
  async run({ args }) {
    const v = String(args.verb);
    if (!VERB_NAME.test(v))
      throw new OperatorError('E_VERB_UNKNOWN', `mway has no command ${JSON.stringify(v)} (see mway --help)`);
    // A typo of a built-in lands here too: without a fleet to ask, it is just unknown.
    try {
      await readOperatorConfig();
    } catch (e) {
      throw new OperatorError(
        'E_VERB_UNKNOWN',
        `mway has no command ${JSON.stringify(v)}, and without an operator config no fleet to ask for module verbs (${(e as Error).message})`,
      );
    }
    if (args.action === undefined) {
      return withClient(async (c) => {
        const found = findModule(fleetModules(c, await c.peers()), v, 'verb');
        output(args.json, found, () =>
          [
            `mway ${v} ACTION --group G|--peer P|--target T [--arg NAME=VALUE…]`,
            '',
            ...found.map(infoText),
          ].join('\n'),
        );
        return EXIT_OK;
      });
    }
    if (args.group === undefined && args.peer === undefined && args.target === undefined)
      throw usageError(`mway ${v} ${String(args.action)} needs --group, --peer or --target`);
    return runModuleCommand('verb', v, String(args.action), args);
  },
});

export default defineCommand({
  meta: { name: 'module', description: 'Modules of the fleet: list, info, verbs, run an action' },
  subCommands: { list, info, verbs, run, verb },
});
