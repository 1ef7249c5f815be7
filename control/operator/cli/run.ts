// `mway run --group G [--exec-timeout S] -- CMD…`: runs a command on each peer; needs an
// operator certificate with the explicit `exec` action. Output is bounded on the peer.
import { defineCommand } from 'citty';
import { usageError } from '../operator-error.ts';
import { runJob, targetArgs } from './shared.ts';

export default defineCommand({
  args: {
    ...targetArgs,
    'exec-timeout': {
      type: 'string',
      numeric: 'number',
      description: 'Seconds the command may run (default 30)',
    },
    command: {
      type: 'positional',
      required: false,
      variadic: true,
      description: 'The command and its arguments, after -- (passed on verbatim, flags included)',
    },
  },
  run({ args }) {
    // Strict parsing keeps everything after `--` verbatim in `_` (`-- ls -la /tmp`).
    const argv = (args._ ?? []).map(String);
    if (argv.length === 0) throw usageError('mway run needs a command after --');
    const a: Record<string, unknown> = { argv };
    if (args['exec-timeout'] !== undefined) a.timeoutMs = Number(args['exec-timeout']) * 1000;
    return runJob(args, 'exec', a);
  },
});
