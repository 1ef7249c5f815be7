// Shared plumbing for every part: errors, subprocesses, CLI, progress, byte checks, and the
// schema helpers as one namespace (`schema.object`, `schema.v`; their names are generic).
export * from './assert.ts';
export * from './atomic-file.ts';
export * from './cli.ts';
export * from './cli-args.ts';
export * from './cli-docs.ts';
export * from './cpu-idle.ts';
export * from './common-codes.ts';
export * from './error.ts';
export * from './error-table.ts';
export * from './eval-worker.ts';
export * from './exec.ts';
export * from './log-line.ts';
export * from './path-exists.ts';
export * from './progress.ts';
export * from './regular-file.ts';
export * from './state-version.ts';
export * from './tools.ts';
export * from './usage-error.ts';
export * as schema from './schema.ts';
export * as cliResult from './cli-result.ts';
