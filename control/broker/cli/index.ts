// Subcommand table: each entry is loaded only when that subcommand runs or shows its help;
// its description is here, so the binary's --help lists it without loading it (lazy()). Without a
// subcommand, `milkywaysrvd --config FILE` runs the broker (serveArgs / runServe).
import type { SubCommandsDef } from 'citty';
import { completionCommand, lazy, UsageError } from '../../../common/index.ts';

export const subCommands: SubCommandsDef = {
  serve: lazy('Run the broker (same as milkywaysrvd --config FILE)', () =>
    import('./serve.ts').then((m) => m.default),
  ),
  audit: lazy('Print or verify the broker audit chain from its database', () =>
    import('./audit.ts').then((m) => m.default),
  ),
  'check-config': lazy('Check a broker config and every file it names, without starting', () =>
    import('./check-config.ts').then((m) => m.default),
  ),
  'nats-user': lazy('Make a NATS nkey user: seed to --out, public key printed', () =>
    import('./nats-user.ts').then((m) => m.default),
  ),
  'nats-authorization': lazy(
    "Write nats-server's authorization block (users, permissions) from a users file",
    () => import('./nats-authorization.ts').then((m) => m.default),
  ),
  completion: completionCommand,
};

export const rootArgs = {
  json: { type: 'boolean', description: 'Print machine-readable JSON on stdout' },
  debug: { type: 'boolean', description: 'Show stack traces on errors' },
  config: { type: 'string', description: 'Broker config file (JSON, doc/broker.md)' },
  'log-format': {
    type: 'enum',
    options: ['text', 'json'] as string[],
    description: 'Log lines on stderr: text (timestamped) or json (one object a line); env MWAY_LOG_FORMAT',
  },
} as const;

/** Root run: `milkywaysrvd --config FILE` is `milkywaysrvd serve --config FILE`. */
export async function runRoot(args: {
  config?: string | undefined;
  json?: boolean | undefined;
  'log-format'?: string | undefined;
}): Promise<number> {
  if (args.config === undefined) {
    throw new UsageError('Missing --config FILE', 'missing-argument', '--config');
  }
  const { serve } = await import('./serve.ts');
  return serve({
    config: args.config,
    ...(args.json === undefined ? {} : { json: args.json }),
    ...(args['log-format'] === undefined ? {} : { 'log-format': args['log-format'] }),
  });
}
