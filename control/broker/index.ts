// control/broker/: milkywaysrvd — the broker, its database, jobs, request handlers, config,
// audit log and CLI. Re-exports only; see doc/internal-apis.md.
export * from './audit-log.ts';
export * from './broker.ts';
export * from './broker-codes.ts';
export * from './broker-context.ts';
export * from './broker-config.ts';
export * from './broker-db.ts';
export * from './broker-error.ts';
export * from './broker-jobs.ts';
export * from './broker-migrations.ts';
export * from './nats-relay.ts';
export * from './nats-bridge.ts';
export * from './nats-bindings.ts';
export * from './nats-users.ts';
