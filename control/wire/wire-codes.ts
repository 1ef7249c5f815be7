// The codes of ControlError (control/wire/control-error.ts): what crosses the wire between
// operators, the broker and peers — transport and protocol failures, the broker's answers,
// enrollment, the audit chain, a peer's refusals and signed results. The table types the
// class's `code` and generates doc/errors-control-wire.md (npm run docs:errors).
import { defineCodes } from '../../common/index.ts';

export const WIRE_CODES = defineCodes(
  {
    part: 'control/wire',
    source: 'control/wire/wire-codes.ts',
    errorClasses: ['ControlError'],
    title: 'Error codes: control/wire (transport, protocol, what crosses the wire)',
    intro: `Every error of the wire is a \`ControlError\` (control/wire/control-error.ts) with one of these
codes. The broker answers a failed request with an \`error\` message carrying the code of the
error it hit (doc/protocol.md); \`connectBroker().request()\` rethrows it as a \`RemoteError\`
with that code. A peer's refusals and results carry the codes below in signed results. CLIs
print \`name: CODE: message\` and exit 1. The broker's own codes are in
[errors-control-broker.md](errors-control-broker.md), \`mway\`'s in
[errors-control-operator.md](errors-control-operator.md).`,
    notes: {
      'Commands: what a peer refuses (agent/remote/command-check.ts)': `Each is answered with a result signed by the peer (status \`refused\`, this code) and shown by
\`mway\` per peer; nothing runs. Order and details: doc/commands.md.`,
    },
  },
  {
    'Transport and protocol': {
      E_PROTOCOL: {
        meaning:
          'A message is not valid JSON, has an unknown kind, misses a required field, or is sent out of order (before `hello`, `hello` twice). A malformed frame closes the connection.',
        fix: 'Fix the client; see doc/protocol.md for the fields of each kind.',
      },
      E_FRAME_TOO_LARGE: {
        meaning:
          'A frame header announces more than 17 MiB (`MAX_FRAME`), or a message to send is larger. The connection is closed before the body is read.',
        fix: 'Send large layers in chunks.',
      },
      E_CONNECTION_CLOSED: {
        meaning: 'A request or send on a connection that has closed.',
        fix: 'Reconnect (the peer link does so with backoff).',
      },
      E_BACKPRESSURE: {
        meaning: 'More than 64 MiB queued for a reader that does not read; the connection is cut.',
        fix: 'The other side is stuck or too slow.',
      },
      E_TIMEOUT: {
        meaning: 'The broker did not complete the handshake/hello or answer a request in time.',
        fix: "Check the address and the broker's log.",
      },
      E_ADDRESS: {
        meaning: 'A broker address is not `host:port`.',
        fix: 'Use `10.0.0.5:7443` or `[::1]:7443`.',
      },
      E_NATS_UNAVAILABLE: {
        meaning:
          'NATS mode: the servers did not store a delivery (no JetStream answer, no stream leader) before the deadline; the delivery may be stored later by a retry, never twice (its message id).',
        fix: "Check that a majority of the cluster runs (`/jsz` on a server's monitoring port) and that the streams exist (doc/nats.md); then send again.",
      },
      E_NATS_CREDENTIALS: {
        meaning:
          "NATS mode: the configured nkey seed file cannot be read or is not one user seed (`SU` and 56 base32 characters, checksum), or the servers refused the user (`Authorization Violation`: its public key is not in the servers' `authorization` block).",
        fix: 'Give the seed file written by `milkywaysrvd nats-user` and put its public key in the servers\' config (doc/nats.md, "Credentials and permissions").',
      },
      E_NATS_TLS: {
        meaning:
          "NATS mode: the configured CA file of the NATS servers (`nats.ca`) cannot be read or holds no PEM certificate, or a server's TLS certificate does not verify against it (or, without `ca`, against Node's CA store).",
        fix: 'Name the PEM file of the CA that issued the nats-server certificates (doc/nats.md, "What NATS\'s classical TLS exposes"); the certificate must name the host the client connects to.',
      },
      E_BROKER_UNREACHABLE: {
        meaning:
          'Nothing took the connection at the broker address: refused (no broker listening on that port), host or network unreachable, or the name does not resolve. No TLS byte was exchanged.',
        fix: 'Start the broker (`milkywaysrvd serve`, `systemctl status milkywaysrvd`) or correct the address (`broker` in the operator config, the agent config, or mDNS).',
      },
      E_BROKER_UNTRUSTED: {
        meaning:
          "The server's certificate does not chain to our anchors, is not a `broker` certificate, or its fingerprint is not the one pinned (mDNS TXT or config).",
        fix: "Check the user root the peer/operator trusts and the broker's identity.",
      },
      E_LISTEN: {
        meaning: 'The broker cannot listen on the configured address (in use, no permission).',
        fix: 'Change `listen` or stop the other process.',
      },
      E_MDNS: {
        meaning:
          'The mDNS responder or browser cannot start (UDP 5353 in use without SO_REUSEADDR, no multicast route). The broker keeps running without advertising.',
        fix: 'Give peers the broker address in their config, or fix multicast on the network.',
      },
    },
    'What a broker answers': {
      E_FORBIDDEN: {
        meaning:
          "The connection's role may not send this kind (e.g. a peer submitting a command, an anonymous client listing peers), the certificate does not chain to the broker's anchors, or `hello` claims another role than the certificate.",
        fix: 'Use an identity of the right role.',
      },
      E_IDENTITY_REVOKED: {
        meaning:
          "The client certificate is on one of the broker's CRLs; the broker refuses it at `hello` and closes the connection.",
        fix: 'Issue a new identity; revoked ones stay refused.',
      },
      E_BROKER_INTERNAL: {
        meaning: 'A bug in the broker while handling a request (details in its log).',
        fix: 'Report it with the broker log.',
      },
      E_COMMAND_EXPIRED: {
        meaning: '`command-submit` with an `expiresAt` already past.',
        fix: 'Sign the command again with a later expiry.',
      },
      E_JOB_EXISTS: {
        meaning:
          'A job with that id exists with a different command envelope (the same envelope again is accepted: submits are idempotent).',
        fix: 'Command ids are 128-bit random: this is a replay or a bug.',
      },
      E_JOB_UNKNOWN: {
        meaning: '`job-get`/`job-watch` of an id the broker never saw.',
        fix: 'Check the id (`mway jobs`).',
      },
      E_GROUP_NOT_EMPTY: {
        meaning:
          '`group-delete` of a group some peer still holds a membership of: the broker keeps it until every member has been sent a signed removal.',
        fix: '`mway group delete` signs the removals first; or `mway group remove G PEER…`.',
      },
      E_PEER_UNKNOWN: {
        meaning:
          'A membership for a peer the broker has never seen (no certificate, never connected, never enrolled).',
        fix: 'Check the id (`mway peers`), or enroll the peer first.',
      },
      E_GROUP_UNKNOWN: {
        meaning: 'A membership for, or deletion of, a group that does not exist.',
        fix: '`mway group create NAME` first.',
      },
    },
    Enrollment: {
      E_ENROLL_INVALID: {
        meaning:
          'The enrollment request is malformed (fields, peer id, labels, key sizes, or `created` more than a day from now).',
        fix: 'Create the request again with `createEnrollmentRequest`.',
      },
      E_ENROLL_SIGNATURE: {
        meaning:
          "The request's signature does not verify with the key it carries (proof of possession failed: the request was altered).",
        fix: 'Create a new request.',
      },
      E_ENROLL_UNKNOWN: {
        meaning: 'No enrollment request with that id.',
        fix: '`mway peers pending` lists them.',
      },
      E_ENROLL_STATE: {
        meaning: 'Accept/reject of a request already accepted or rejected.',
        fix: 'Nothing to do; a rejected peer must send a new request with a new key.',
      },
      E_ENROLL_REJECTED: {
        meaning: 'The peer’s enrollment request was rejected by an operator (agent/remote/enroll-peer.ts).',
        fix: 'Create a new request with a new key if the rejection was a mistake.',
      },
      E_ENROLL_TAKEN: {
        meaning:
          'An accepted certificate names a peer id another certificate already holds on this broker (two machines asking for one name, or a reinstall).',
        fix: 'Accept with another `--peer-id`, or with `--replace` when the machine was reinstalled.',
      },
      E_ENROLL_TOKEN_INVALID: {
        meaning:
          'An enrollment token is malformed, does not verify (signature, operator chain to the user root, certificate expired), or is for another fleet (control/wire/enroll-token.ts).',
        fix: 'Sign a new one with `mway peers token create` and put it in the image or the cloud-init seed.',
      },
      E_ENROLL_TOKEN_SCOPE: {
        meaning:
          "The operator who signed the token may not: its certificate's scope lacks the `enroll` action or a group the token names.",
        fix: 'Have an operator whose scope covers `enroll` and those groups sign the token.',
      },
      E_ENROLL_TOKEN_REVOKED: {
        meaning: "The token's signer is revoked by a CRL in force: none of its tokens is honoured any more.",
        fix: 'Sign a new token with a valid operator certificate.',
      },
      E_ENROLL_TOKEN_EXPIRED: {
        meaning: 'The enrollment token is past its `expiresAt`; `mway peers autosign` rejects the request.',
        fix: 'Sign a new token (`mway peers token create --expires …`), or accept the machine by hand (`mway peers accept`).',
      },
      E_ENROLL_TOKEN_USED: {
        meaning:
          'The token has been used by as many machines as its `uses` allow (counted by `mway peers autosign` in its own ledger); the request is rejected.',
        fix: 'Sign a token with more uses, or accept the machine by hand.',
      },
      E_ENROLL_CERT: {
        meaning:
          "The certificate offered with `enrollment-accept` does not parse, does not chain to the broker's anchors, is not a peer certificate, or is for another signing key, KEM key or peer id than the request.",
        fix: 'Issue the certificate for exactly the requested key (`mway peers accept`).',
      },
    },
    'Audit chain': {
      E_AUDIT_BROKEN: {
        meaning:
          'The audit chain does not verify: an entry is missing, out of order, edited (its hash differs), or the chain does not end at the expected head. The message names the first bad entry.',
        fix: 'Treat the broker as compromised from that entry on; the signed envelopes before it are still good.',
      },
      E_AUDIT_ENVELOPE: {
        meaning: "An entry's command, result or membership envelope does not verify against the anchors.",
        fix: 'As above: the broker stored something no operator or peer signed.',
      },
    },
    'Commands: what a peer refuses (agent/remote/command-check.ts)': {
      E_CMD_SIGNATURE: {
        meaning: 'The envelope is malformed or its signature does not verify: it was changed on the way.',
        fix: 'Treat the broker as compromised; resend from `mway`.',
      },
      E_CMD_OPERATOR_UNTRUSTED: {
        meaning:
          "The signer does not chain to the peer's user root, its certificate is expired or not yet valid, it is not an operator, or there is not exactly one signature.",
        fix: "Use an operator certificate of this fleet's root.",
      },
      E_CMD_OPERATOR_REVOKED: {
        meaning: 'The operator certificate is on a CRL the peer holds.',
        fix: 'Use another operator identity.',
      },
      E_CMD_PEER_REVOKED: {
        meaning: "The peer's own certificate is revoked: it refuses every command.",
        fix: 'Re-provision or re-enroll the peer.',
      },
      E_CMD_PEER_UNTRUSTED: {
        meaning: "The peer's own certificate no longer verifies: it refuses every command.",
        fix: 'Re-provision or re-enroll the peer.',
      },
      E_CMD_MALFORMED: {
        meaning: 'The payload is not the documented shape (names the field).',
        fix: 'Fix the client that built it.',
      },
      E_CMD_ACTION_UNKNOWN: {
        meaning: 'The action is not allow-listed.',
        fix: 'See doc/commands.md, "Actions".',
      },
      E_CMD_LIFETIME: {
        meaning: 'Expiry more than 7 days after issue (also refused when signing).',
        fix: 'Use a shorter `ttl`.',
      },
      E_CMD_NOT_YET_VALID: { meaning: 'Before issuedAt − skew.', fix: 'Check clocks.' },
      E_CMD_EXPIRED: {
        meaning: 'After expiresAt + skew.',
        fix: 'Check clocks; a broker that delays commands shows up here.',
      },
      E_CMD_WRONG_FLEET: {
        meaning: 'The audience names another fleet.',
        fix: 'Check `fleet` in the operator and peer configs.',
      },
      E_CMD_NOT_ADDRESSED: {
        meaning: 'The audience does not list this peer: the command was retargeted.',
        fix: 'Treat the broker as compromised.',
      },
      E_CMD_CANCELLED: {
        meaning:
          'The command was cancelled (`mway job cancel`) before it ran on this peer: a signed `job.cancel` claimed its id, so it never runs here, whoever delivers it.',
        fix: 'Nothing: that is what cancelling means. Sign a new command to run it after all.',
      },
      E_CMD_SCOPE_ACTION: {
        meaning:
          "The operator's certificate does not allow this action (`exec` needs an explicit entry; a module action `module:<layer>.<action>` or `module:<layer>`, which `*` never covers).",
        fix: 'Get a certificate with that scope.',
      },
      E_CMD_SCOPE_GROUP: {
        meaning: "The operator's certificate does not allow this group.",
        fix: 'Get a certificate with that scope.',
      },
      E_CMD_NOT_MEMBER: {
        meaning: 'A group command reached a peer that holds no signed membership of the group.',
        fix: '`mway group add GROUP PEER`.',
      },
      E_CMD_REPLAYED: {
        meaning:
          'This command id was already received; it ran at most once (the original result rides along in `output.previous`).',
        fix: 'Nothing: a redelivery or a replay.',
      },
      E_CMD_SEQ_REUSED: {
        meaning:
          'A command with a new id reuses a sequence number this peer already admitted from the same operator certificate: a forged resend or two `mway` counters for one certificate.',
        fix: 'Give each machine its own operator certificate; check the broker if it was not you.',
      },
      E_CMD_SEQ_STALE: {
        meaning:
          'The sequence number is more than 4096 below the highest this peer admitted from that operator certificate (doc/commands.md, _Sequence numbers_).',
        fix: 'Resend (a new command takes a new number); a certificate shared between machines falls behind like this.',
      },
      E_PEER_STATE: {
        meaning: 'The peer could not persist its replay cache, so it refuses rather than risk running twice.',
        fix: "Check the peer's data partition.",
      },
    },
    'Memberships, actions, results': {
      E_MEMBERSHIP_INVALID: {
        meaning:
          "A membership's signature or operator chain fails; the peer does not hold it (reported in `membership-ack`).",
        fix: 'Sign it with a valid operator.',
      },
      E_MEMBERSHIP_REVOKED: {
        meaning:
          "A membership's operator certificate is revoked; the peer does not hold it (reported in `membership-ack`).",
        fix: 'Sign it with a valid operator.',
      },
      E_MEMBERSHIP_SCOPE: {
        meaning: "The signing operator's scope lacks the group or the `group` action.",
        fix: 'Use an operator in charge of the group.',
      },
      E_MEMBERSHIP_PEER: {
        meaning: 'The membership names another peer or fleet.',
        fix: 'Fix the membership.',
      },
      E_MEMBERSHIP_SUPERSEDED: {
        meaning:
          'The peer holds a newer statement for that group (or another one signed at the same instant); this one is not applied (reported in `membership-ack`).',
        fix: 'Sign a new membership (`mway group add` / `remove` again).',
      },
      E_MEMBERSHIP_MALFORMED: {
        meaning: 'The membership is not the documented shape.',
        fix: 'Fix the membership.',
      },
      E_ACTION_ARGS: {
        meaning:
          "An action's arguments are out of range (names, line counts, exec argv, layer sizes and offsets).",
        fix: 'Fix the arguments.',
      },
      E_ACTION_DIGEST: {
        meaning:
          'Layer bytes do not match the size and SHA-256 the signed command names (tampered, dropped or missing piece).',
        fix: 'Send the layer again.',
      },
      E_ACTION_SECRET: {
        meaning:
          'A sealed secret is not for this peer, not from an operator of our root, or bound to another name or secret group.',
        fix: 'Seal it to the right peer (`mway secrets` does).',
      },
      E_CRL_STALE: {
        meaning:
          'A CRL pushed with `mway crl push` is older than the CRL of the same issuer the peer has in force; the peer keeps the newer one.',
        fix: 'Push the newest CRL (`mway keys revoke` / `mway keys crl` write a new one).',
      },
      E_EXEC_EXIT: {
        meaning:
          'The command `mway run` started on the peer exited non-zero: the result is `failed`, with its exit status, stdout and stderr as the output.',
        fix: 'See the output under the table (`mway run` prints it per peer).',
      },
      E_ACTION_FAILED: {
        meaning:
          "The action failed without a more precise code (the agent's own codes, e.g. `E_SERVICE_UNKNOWN`, are passed through).",
        fix: 'See the message.',
      },
      E_RESULT_SIGNATURE: {
        meaning: 'A result or status does not verify; `mway` shows the peer as `invalid`.',
        fix: 'Investigate that peer.',
      },
      E_RESULT_PEER_REVOKED: {
        meaning: "A result's or status's peer certificate is revoked; `mway` shows the peer as `invalid`.",
        fix: 'Investigate that peer.',
      },
      E_RESULT_PEER: {
        meaning: "A result or status claims another peer id than its signer's certificate.",
        fix: 'The broker or peer is lying.',
      },
      E_RESULT_BINDING: {
        meaning: 'A result (other than a refusal) answers another command id or envelope digest.',
        fix: 'The broker pinned an answer on the wrong command.',
      },
      E_RESULT_MALFORMED: { meaning: 'A result payload is not the documented shape.', fix: 'Fix the peer.' },
    },
  },
);

export type WireCode = keyof typeof WIRE_CODES.codes;
