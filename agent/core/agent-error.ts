// The agent's one error class; its codes are the table in agent/core/agent-codes.ts
// (doc/errors-agent.md is generated from it).
import {
  COMMON_CODES,
  type CommonCode,
  MilkyWayError,
  type MilkyWayErrorOptions,
} from '../../common/index.ts';
import { AGENT_CODES, type AgentCode } from './agent-codes.ts';

export class AgentError extends MilkyWayError {
  static override codes = { ...COMMON_CODES.codes, ...AGENT_CODES.codes };
  declare readonly code: AgentCode | CommonCode;
  constructor(code: AgentCode | CommonCode, message: string, options: MilkyWayErrorOptions = {}) {
    super(code, message, options);
  }
}
