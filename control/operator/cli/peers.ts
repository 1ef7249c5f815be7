// `mway peers [pending|accept|reject|autosign|token create]`: the fleet as the broker sees it; every certificate
// it hands out is checked against our anchors before it is shown as trusted.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import type { PeerView } from '../operator-client.ts';
import { factsLine, factsOf } from './facts.ts';
import { findEnrollmentRequest, withClient } from './shared.ts';
import { usageError } from '../operator-error.ts';
import { ControlError, enrollmentStale } from '../../wire/index.ts';

function row(p: PeerView, trusted: boolean, facts: string): string {
  const groups = (p.groups ?? []).join(',') || '-';
  return `${p.peerId.padEnd(20)} ${(p.online ? 'online' : 'offline').padEnd(8)} ${groups.padEnd(20)} ${trusted ? facts : 'CERTIFICATE NOT TRUSTED'}`.trimEnd();
}

const waitArgs = {
  wait: {
    type: 'string',
    description: 'Wait until at least N are there (up to --timeout); peers: online and reported their status',
  },
  timeout: { type: 'string', description: 'Seconds --wait waits (default 60)' },
} as const;

/**
 * Re-asks `count()` until it reaches `--wait N` or `--timeout` passes (E_TIMEOUT, exit 1);
 * scripts start machines and then wait for them instead of sleeping.
 */
async function waitFor(
  a: { wait?: string | undefined; timeout?: string | undefined },
  what: string,
  count: () => Promise<number>,
): Promise<void> {
  if (a.wait === undefined) return;
  const n = Number(a.wait);
  const s = a.timeout === undefined ? 60 : Number(a.timeout);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw usageError('--wait must be a count of 1 or more');
  if (!(s > 0 && s <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
  const end = Date.now() + s * 1000;
  for (;;) {
    const have = await count();
    if (have >= n) return;
    if (Date.now() >= end)
      throw new ControlError('E_TIMEOUT', `Waited ${s} s for ${n} ${what}, there are ${have}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const pending = defineCommand({
  meta: { name: 'pending', description: 'Enrollment requests waiting for acceptance, with fingerprints' },
  args: { ...commonArgs, ...waitArgs },
  run: ({ args }) =>
    withClient(async (c) => {
      // Pending by the broker and fresh by our own clock, the one `peers accept` checks.
      const list = async () =>
        (
          ((await c.client.request('enrollment-list')).requests as Array<Record<string, unknown>>) ?? []
        ).filter((x) => x.state === 'pending' && !enrollmentStale(x.request, new Date()));
      await waitFor(args, 'pending requests', async () => (await list()).length);
      const open = await list();
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
  args: { ...commonArgs, ...waitArgs },
  subCommands: {
    pending,
    reject,
    accept: () => import('./peers-accept.ts').then((m) => m.default),
    autosign: () => import('./peers-autosign.ts').then((m) => m.default),
    token: () => import('./peers-token.ts').then((m) => m.default),
  },
  run: ({ args }) =>
    withClient(async (c) => {
      // Online is the TLS session; the signed status (facts) follows once the peer has gathered
      // it, seconds later on a slow machine. Waiting for both means a script's next `mway facts`
      // or `mway status` sees every peer it waited for.
      await waitFor(
        args,
        'peers online with a status',
        async () =>
          (await c.peers()).filter((p) => p.online && p.status !== null && p.status !== undefined).length,
      );
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
