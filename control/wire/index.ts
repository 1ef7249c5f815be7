// control/wire/: what the broker, the operator and the peer share — the protocol messages and
// their framing, the TLS transport, the signed command, result, membership and enrollment
// formats, the audit chain, mDNS discovery and the action argument limits. Re-exports only;
// see doc/internal-apis.md.
export * from './action-args.ts';
export * from './audit-chain.ts';
export * from './command.ts';
export * from './control-error.ts';
export * from './enroll-token.ts';
export * from './enrollment.ts';
export * from './mdns.ts';
export * from './nats-audit.ts';
export * from './nats-backlog.ts';
export * from './nats-connect.ts';
export * from './nats-credentials.ts';
export * from './nats-enroll.ts';
export * from './nats-peer.ts';
export * from './nats-permissions.ts';
export * from './nats-subjects.ts';
export * from './membership.ts';
export * from './module-run.ts';
export * from './peer-facts.ts';
export * from './protocol.ts';
export * from './result.ts';
export * from './transport.ts';
export * from './wire-codes.ts';
