// control/operator/: mway — the operator client, its command sequence numbers, target
// resolution and CLI. Re-exports only; see doc/internal-apis.md.
export * from './operator-client.ts';
export * from './operator-codes.ts';
export * from './operator-error.ts';
export * from './operator-seq.ts';
export * from './targets.ts';
