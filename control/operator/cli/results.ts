// What each `mway` verb prints under `result` with --json (doc/cli.md, "Output"; published in
// doc/cli-result.schema.json by `npm run schemas`). The tests' CLI helper checks every --json
// output against its verb's entry here, and the verb walk checks that every verb has one.
import { cliResult, schema } from '../../../common/index.ts';

const { any, bool, num, opt, rows, shape, str } = cliResult;
const { v } = schema;

const summary = shape({ targeted: num, succeeded: num, failed: num, noAnswer: num });
const peerReport = { peer: str, outcome: str, code: opt(str), message: opt(str), output: opt(any) };

/**
 * A fleet command's --json (Salt's streaming `--out=json`): one line per peer as its verified
 * result arrives (`type: result`), then one `type: summary` line. With --static (and `mway job
 * ID`) one document: the whole report.
 */
export const fleetJob = v.union([
  shape({ type: v.literal('result'), jobId: str, ...peerReport }),
  shape({
    type: v.literal('summary'),
    jobId: str,
    action: str,
    target: str,
    summary,
    dryRun: opt(v.literal(true)),
    peers: opt(rows(str)),
    async: opt(v.literal(true)),
  }),
  shape({
    jobId: str,
    action: str,
    target: str,
    peers: rows(shape(peerReport)),
    summary,
    dryRun: opt(bool),
    async: opt(bool),
  }),
]);

const memberReport = shape({ peer: str, outcome: str, code: opt(str), message: opt(str) });
/** `group add` and `group remove`: each peer's answer to its signed membership. */
export const membership = shape({ group: str, member: bool, peers: rows(memberReport), applied: num });
const peerState = { peer: str, online: bool, status: v.picklist(['none', 'verified', 'INVALID']) };
const moduleInfo = shape({ name: str, version: str });
const vpnJobs = rows(any);

export const operatorResults: cliResult.VerbResults = {
  // `mway keys …`: keys/cli/results.ts (scripts/cli-results.ts puts them under mway).
  'mway config init': shape({ file: str }),
  'mway config show': shape({ dir: str, broker: str, fleet: str, key: str, cert: str, anchors: rows(str) }),
  'mway peers': rows(shape({ peerId: str, online: bool, trusted: bool, facts: opt(any) })),
  'mway peers pending': rows(
    shape({ requestId: str, peerId: str, fingerprint: str, facts: v.record(str, any) }),
  ),
  'mway peers reject': shape({ requestId: str, rejected: v.literal(true) }),
  'mway peers accept': shape({ requestId: str, peerId: str, fingerprint: str, groups: rows(str) }),
  // One line per decision, as each pass makes it (--watch: until stopped).
  'mway peers autosign': shape({
    requestId: str,
    peerId: str,
    outcome: v.picklist(['accepted', 'refused', 'failed']),
    code: opt(str),
    message: opt(str),
    token: opt(str),
    groups: opt(rows(str)),
  }),
  'mway peers token create': shape({ id: str, expiresAt: str, file: str }),
  // The seed's `group --make-peer-group --name G [--all-unassigned]`: create, then add.
  'mway group': membership,
  'mway group create': shape({ group: str, created: v.literal(true) }),
  'mway group add': membership,
  'mway group remove': membership,
  'mway group list': rows(shape({ group: str, members: rows(str) })),
  'mway group delete': v.intersect([membership, shape({ deleted: bool })]),
  'mway service': fleetJob,
  'mway install': fleetJob,
  // `update status`: each peer's slots from its signed status; otherwise the rollout.
  'mway update': v.union([rows(shape({ peer: str, coreos: opt(any), error: opt(str) })), fleetJob]),
  'mway compose up': fleetJob,
  'mway docker start': fleetJob,
  'mway remove': fleetJob,
  'mway secrets': fleetJob,
  'mway reboot': fleetJob,
  'mway poweroff': fleetJob,
  'mway run': fleetJob,
  'mway module list': rows(moduleInfo),
  'mway module info': rows(moduleInfo),
  'mway module verbs': rows(shape({ verb: str, module: str, version: str, description: str })),
  'mway module run': fleetJob,
  // Without an action: the modules that add the verb; with one, the fleet command.
  'mway module verb': v.union([rows(moduleInfo), fleetJob]),
  'mway vpn create': shape({ name: str, network: str, hub: any, peers: rows(any), jobs: vpnJobs }),
  'mway vpn add': shape({ name: str, network: str, hub: any, added: rows(any), jobs: vpnJobs }),
  // A peer taken out (`removed`), or the whole VPN (`revoked`, what each member did).
  'mway vpn remove': v.union([
    shape({ name: str, removed: rows(memberReport), jobs: vpnJobs }),
    shape({ name: str, revoked: any, members: rows(memberReport), jobs: vpnJobs }),
  ]),
  'mway vpn status': rows(shape({ peer: str, vpn: shape({ name: str, role: str }) })),
  // The stored statuses, or (--group/--peer/--target) the peers asked now.
  'mway status': v.union([
    rows(
      shape({
        ...peerState,
        at: opt(str),
        state: opt(str),
        services: opt(str),
        groups: opt(any),
        layers: opt(any),
        units: opt(rows(any)),
        error: opt(str),
      }),
    ),
    fleetJob,
  ]),
  'mway facts': rows(shape({ ...peerState, at: opt(str), facts: opt(v.record(str, any)), error: opt(str) })),
  'mway crl push': fleetJob,
  'mway jobs': rows(shape({ jobId: str, action: str, target: str })),
  // `job ID`: the stored report, every result verified; `job cancel ID`: what each peer did.
  'mway job': v.union([
    fleetJob,
    shape({ jobId: str, cancelJobId: str, peers: rows(memberReport), cancelled: bool }),
  ]),
  // The entries; with --verify, the chain's report.
  'mway audit': v.union([
    rows(shape({ seq: num, time: str, kind: str, actor: str })),
    shape({ entries: num, head: str, report: any }),
  ]),
  'mway completion': null,
};
