// The agent's own flags, shared by the root command and `run` (kept apart so --help does not
// load the agent).
import { commonArgs } from '../../common/index.ts';

export const DEFAULT_CONFIG = '/etc/milkyway/agent.json';

export const runArgs = {
  ...commonArgs,
  root: {
    type: 'string',
    description: "The agent's root directory (namespace mode); config paths resolve inside it",
  },
  config: { type: 'string', description: `Agent config file (JSON; default ${DEFAULT_CONFIG})` },
  mode: {
    type: 'string',
    description: 'pid1 | namespace | auto (default: pid1 when in the initial PID namespace)',
  },
  'log-format': {
    type: 'enum',
    options: ['text', 'json'] as string[],
    description:
      "The agent's log lines on the console: text (timestamped) or json (one object a line); env MWAY_LOG_FORMAT, else the config's logFormat",
  },
} as const;
