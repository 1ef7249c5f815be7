// `mway service --group G|--peer P start|stop|restart|enable|disable|status|logs|list [SERVICE]`;
// enable/disable say whether the service starts on its own at boot (kept across reboots).
import { defineCommand } from 'citty';
import type { CommandAction } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import { runJob, targetArgs } from './shared.ts';

const VERBS = ['start', 'stop', 'restart', 'enable', 'disable', 'status', 'logs', 'list'] as const;

export default defineCommand({
  args: {
    ...targetArgs,
    verb: { type: 'positional', required: true, description: VERBS.join('|') },
    service: {
      type: 'positional',
      required: false,
      description: 'Service name (<layer>/<service> or <service>)',
    },
    lines: { type: 'string', numeric: 'integer', description: 'Log lines (logs, default 100)' },
  },
  run({ args }) {
    const verb = args.verb as (typeof VERBS)[number];
    if (!VERBS.includes(verb)) throw usageError(`Unknown service verb ${args.verb}: use ${VERBS.join(', ')}`);
    if (verb !== 'list' && args.service === undefined) throw usageError(`service ${verb} needs a SERVICE`);
    const a: Record<string, unknown> = verb === 'list' ? {} : { service: args.service };
    if (verb === 'logs' && args.lines !== undefined) a.lines = Number(args.lines);
    return runJob(args, `service.${verb}` as CommandAction, a);
  },
});
