// The codes of BrokerError (control/broker/broker-error.ts): the broker's own failures, its
// config and its database. What it answers over the wire is in control/wire/wire-codes.ts.
// The table types the class's `code` and generates doc/errors-control-broker.md.
import { defineCodes } from '../../common/index.ts';

export const BROKER_CODES = defineCodes(
  {
    part: 'control/broker',
    source: 'control/broker/broker-codes.ts',
    errorClasses: ['BrokerError'],
    title: 'Error codes: control/broker (milkywaysrvd)',
    intro: `The broker's own failures are \`BrokerError\`s (control/broker/broker-error.ts) with these
codes; \`milkywaysrvd\` prints \`milkywaysrvd: CODE: message\` and exits with the code's exit code.
What the broker answers to a request (\`E_FORBIDDEN\`, \`E_JOB_UNKNOWN\`, …) is in
[errors-control-wire.md](errors-control-wire.md).`,
  },
  {
    Broker: {
      E_BROKER_DB: {
        meaning:
          'The SQLite database cannot be opened, or it is not a broker database (no known schema marker).',
        fix: 'Check the `database` path and permissions; do not share a database between broker versions.',
      },
      E_BROKER_DB_NEWER: {
        meaning:
          'The database is at a schema version above the last migration this broker knows: a newer broker wrote it. It is refused and left unchanged.',
        fix: 'Run the newer broker again, or restore a backup made before the upgrade.',
      },
      E_BROKER_DB_MIGRATE: {
        meaning:
          'A migration of the database failed; its transaction was rolled back, so the database stays at the version before it (`details.version`).',
        fix: 'Check the disk and permissions, then start the broker again; report the message if it repeats.',
      },
      E_CONFIG: {
        meaning:
          'The broker config file is missing, not JSON, has an unknown field or an invalid value (the message names the field).',
        fix: 'Fix the field named; doc/broker.md lists them.',
      },
    },
  },
);

export type BrokerCode = keyof typeof BROKER_CODES.codes;
