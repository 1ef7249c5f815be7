// The agent's one error class; codes are listed in doc/errors-agent.md.
import { MilkyWayError } from '../../common/index.ts';

export class AgentError extends MilkyWayError {}
