// `mway peers [pending|accept|reject]`: the fleet as the broker sees it; every certificate
// it hands out is checked against our anchors before it is shown as trusted.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import type { PeerView } from '../operator-client.ts';
import { factsLine, factsOf } from './facts.ts';
import { findEnrollmentRequest, withClient } from './shared.ts';

function row(p: PeerView, trusted: boolean, facts: string): string {
  const groups = (p.groups ?? []).join(',') || '-';
  return `${p.peerId.padEnd(20)} ${(p.online ? 'online' : 'offline').padEnd(8)} ${groups.padEnd(20)} ${trusted ? facts : 'CERTIFICATE NOT TRUSTED'}`.trimEnd();
}

const pending = defineCommand({
  meta: { name: 'pending', description: 'Enrollment requests waiting for acceptance, with fingerprints' },
  args: { ...commonArgs },
  run: ({ args }) =>
    withClient(async (c) => {
      const r = (await c.client.request('enrollment-list')).requests as Array<Record<string, unknown>>;
      const open = (r ?? []).filter((x) => x.state === 'pending');
      const rows = open.map((x) => ({
        requestId: x.requestId,
        peerId: x.peerId,
        name: x.name,
        fingerprint: x.fingerprint,
        labels: x.labels,
        created: x.created,
        // The machine's own claims, signed with the key being enrolled: compare the fingerprint.
        facts: ((x.request as { payload?: { facts?: unknown } } | undefined)?.payload?.facts ?? {}) as Record<
          string,
          unknown
        >,
      }));
      output(args.json, rows, () =>
        rows.length === 0
          ? 'no pending requests'
          : rows
              .map((x) => `${x.requestId}  ${x.peerId}  ${x.fingerprint}\n    ${factsLine(x.facts)}`)
              .join('\n'),
      );
      return 0;
    }),
});

const reject = defineCommand({
  meta: { name: 'reject', description: 'Reject an enrollment request' },
  args: { ...commonArgs, id: { type: 'positional', required: true, description: 'Request id or peer id' } },
  run: ({ args }) =>
    withClient(async (c) => {
      const row = await findEnrollmentRequest(c, args.id);
      await c.client.request('enrollment-reject', { requestId: row.requestId });
      output(args.json, { requestId: args.id, rejected: true }, () => `rejected ${args.id}`);
      return 0;
    }),
});

export default defineCommand({
  meta: { name: 'peers', description: 'List peers; manage enrollment requests' },
  args: { ...commonArgs },
  subCommands: { pending, reject, accept: () => import('./peers-accept.ts').then((m) => m.default) },
  run: ({ args }) =>
    withClient(async (c) => {
      const peers = await c.peers();
      const facts = factsOf(c, peers);
      const rows = peers.map((p, i) => {
        let trusted = true;
        try {
          c.peerCertificate(p);
        } catch {
          trusted = false;
        }
        const f = facts[i];
        return {
          ...p,
          certificate: undefined,
          status: undefined,
          trusted,
          facts: f?.status === 'verified' ? f.facts : undefined,
        };
      });
      output(args.json, rows, () =>
        rows.length === 0
          ? 'no peers'
          : rows.map((p) => row(p as unknown as PeerView, p.trusted, factsLine(p.facts))).join('\n'),
      );
      return 0;
    }),
});
