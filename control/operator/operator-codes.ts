// The codes of OperatorError (control/operator/operator-error.ts): `mway`'s own failures —
// its config, targets, what it shows per peer. The table types the class's `code` and
// generates doc/errors-control-operator.md (npm run docs:errors).
import { defineCodes } from '../../common/index.ts';

export const OPERATOR_CODES = defineCodes(
  {
    part: 'control/operator',
    source: 'control/operator/operator-codes.ts',
    errorClasses: ['OperatorError'],
    title: 'Error codes: control/operator (mway)',
    intro: `\`mway\`'s own failures are \`OperatorError\`s (control/operator/operator-error.ts) with these
codes; \`mway\` prints \`mway: CODE: message\` and exits with the code's exit code. Codes the
broker answers with and a peer's refusals and results are in
[errors-control-wire.md](errors-control-wire.md); key and certificate failures in
[errors-keys.md](errors-keys.md).`,
  },
  {
    Operator: {
      E_CONFIG: {
        meaning:
          '`~/.config/mway/config.json` missing or invalid (`mway config init` writes it), or its certificate is not an operator certificate.',
        fix: 'Run `mway config init`.',
      },
      E_ENROLL_ISSUER: {
        meaning:
          '`mway peers accept` or `autosign` was given an issuer that is not a peer issuer (the user root itself, say): peer certificates of enrolling machines are issued by the peer issuer, so the user root stays offline. Nothing was issued.',
        fix: 'Make the peer issuer once (`mway keys new --role peer-issuer --name peer-issuer --out pki --issuer-key pki/user-root.key --issuer-cert pki/user-root.crt`) and pass `--issuer-key pki/peer-issuer.key --issuer-cert pki/peer-issuer.crt`.',
      },
      E_PEER_CERT: {
        meaning: 'The broker handed out a certificate for another peer id than the peer it lists.',
        fix: 'The broker is lying; do not seal secrets to it.',
      },
      E_TARGET_INVALID: {
        meaning: 'The target expression cannot be read.',
        exit: 2,
        fix: 'See doc/commands.md, "Targets".',
      },
      E_TARGET_EMPTY: {
        meaning: 'The target expression matches no peer.',
        fix: 'See doc/commands.md, "Targets".',
      },
      E_PEER_UNKNOWN: {
        meaning:
          'A peer named with `--peer`, `peer:ID` or `mway group add G ID` is not known to the broker: nothing was signed or sent.',
        fix: 'Check the id (`mway peers`); a new machine enrolls first (`mway peers pending`).',
      },
      E_COMPOSE_LAYERS: {
        meaning:
          '`mway compose up --layers DIR`: DIR lacks the layer `<project>-<service>.mwl` of a service of the compose file, or that file is another layer (its manifest names another layer or is not in the layer group `<project>`). Nothing was sent.',
        fix: 'Import the file again with `mway-layer import-compose FILE -o DIR`, or let `mway compose up --key --cert` import it.',
      },
      E_LAYER_TOO_LARGE: {
        meaning: '`layerArgs()` was given a layer over 2 MiB (the CLI sends such layers in pieces).',
        fix: 'Use `installLargeLayer()`.',
      },
      E_JOB_QUEUED: {
        meaning: 'Shown per peer without a result: not sent yet.',
        fix: 'Wait (`mway job ID`), or look at the peer.',
      },
      E_JOB_PENDING: {
        meaning: 'Shown per peer without a result: sent but unanswered.',
        fix: 'Wait (`mway job ID`), or look at the peer.',
      },
      E_JOB_EXPIRED: {
        meaning: 'Shown per peer without a result: the command expired before delivery.',
        fix: 'Sign it again, or look at the peer.',
      },
      E_JOB_CANCELLED: {
        meaning:
          'Shown per peer without a result: the job was cancelled (`mway job cancel`) before it reached the peer.',
        fix: 'Sign a new command to run it after all.',
      },
      E_JOB_SKIPPED: {
        meaning: 'Shown per peer without a result: skipped by `--max-fail`.',
        fix: 'Look at the peers that failed.',
      },
      E_MODULE_UNKNOWN: {
        meaning: 'No peer whose signed status verifies reports an active module of that name.',
        fix: 'See `mway module list`; install the module first.',
      },
      E_VERB_UNKNOWN: {
        meaning:
          'Neither a `mway` command nor the verb of a module the fleet reports (`mway module verbs` lists them).',
        exit: 2,
        fix: 'See `mway --help` and `mway module verbs`.',
      },
      E_MODULE_ACTION_UNKNOWN: {
        meaning: 'The module has no action of that name.',
        fix: 'See `mway module info NAME`.',
      },
      E_MODULE_ARGS: {
        meaning:
          "The arguments do not match the action's schema (`details.field` names the argument), or `--arg` / `--args-file` cannot be read; nothing was signed.",
        exit: 2,
        fix: 'See `mway module info NAME`.',
      },
      E_MODULE_VERSIONS: {
        meaning:
          'The targeted peers run different manifests of the module: one command cannot be bound to both.',
        fix: 'Target the peers of one version (`--target`), or pass `--any-version`.',
      },
      E_VPN_UNKNOWN: {
        meaning:
          '`mway vpn`: no online peer with the vpn module says it is the hub of (or a member of) a VPN of that name.',
        fix: 'See `mway vpn status`; `mway vpn create` makes one (doc/vpn.md).',
      },
      E_VPN_EXISTS: {
        meaning: '`mway vpn create`: a peer is already the hub of a VPN of that name; nothing was signed.',
        fix: 'Use `mway vpn add`, or `mway vpn remove NAME --all` first.',
      },
      E_VPN_ADDRESSES: {
        meaning: "`mway vpn`: the tunnel's network has no address left for a member; nothing was signed.",
        fix: 'Make the VPN with a wider `--network`.',
      },
      E_VPN_ENDPOINT: {
        meaning:
          "`mway vpn`: the hub's signed facts hold no address the spokes could dial (or none in `--endpoint-net`); nothing was signed.",
        fix: 'Give `--endpoint ADDRESS[:PORT]`.',
      },
      E_VPN_STEP: {
        meaning:
          "`mway vpn`: one step (a vpn module action) did not succeed on a member; `details` has the step, the jobs signed so far and each peer's report. Steps already done stay done.",
        fix: 'Read the peer’s stderr in the message (`mway job ID` shows it whole), fix it, run the command again: each step is safe to repeat.',
      },
      E_USAGE: { meaning: 'A bad flag or argument to `mway`.', exit: 2, fix: 'See `mway COMMAND --help`.' },
    },
  },
);

export type OperatorCode = keyof typeof OPERATOR_CODES.codes;
