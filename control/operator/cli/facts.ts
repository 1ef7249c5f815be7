// `mway facts [--peer P,…] [--json]`: what each peer reports about itself (hostname, arch,
// kernel, OS and CoreOS version, CPUs, memory, addresses, SELinux mode), read from its last
// signed status and verified here; a status that does not verify shows as INVALID.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_FAIL, EXIT_OK, output } from '../../../common/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { verifyStatus } from '../../wire/index.ts';
import { OperatorError } from '../operator-error.ts';
import type { OperatorClient, PeerView } from '../operator-client.ts';
import { withClient } from './shared.ts';

export interface FactsRow {
  peer: string;
  online: boolean;
  /** `verified` (facts from a signed status), `none` (no status yet) or `INVALID`. */
  status: 'verified' | 'none' | 'INVALID';
  at?: string;
  facts?: Record<string, unknown>;
  error?: string;
}

/** The facts of each peer from its signed status, checked against our anchors. */
export function factsOf(c: OperatorClient, peers: readonly PeerView[]): FactsRow[] {
  return peers.map((p) => {
    if (p.status === null || p.status === undefined)
      return { peer: p.peerId, online: p.online, status: 'none' };
    try {
      const s = verifyStatus(p.status as Envelope, { anchors: c.anchors, crls: c.crls }).payload;
      if (s.peer !== p.peerId) throw new Error(`status of ${s.peer} filed under ${p.peerId}`);
      return {
        peer: p.peerId,
        online: p.online,
        status: 'verified',
        at: s.at,
        facts: (s.facts ?? {}) as Record<string, unknown>,
      };
    } catch (e) {
      return { peer: p.peerId, online: p.online, status: 'INVALID', error: (e as Error).message };
    }
  });
}

/** One line: hostname, arch, kernel, OS (CoreOS version), addresses. */
export function factsLine(f: Record<string, unknown> | undefined): string {
  if (f === undefined) return '';
  const os = f.os as { pretty?: string; id?: string; version?: string } | undefined;
  const coreos = f.coreos as { version?: string } | undefined;
  const addrs = Object.values((f.addresses ?? {}) as Record<string, string[]>).flat();
  return [
    String(f.hostname ?? '?'),
    String(f.arch ?? '?'),
    String(f.kernel ?? '?'),
    coreos?.version === undefined ? (os?.pretty ?? os?.id ?? '?') : `coreos ${coreos.version}`,
    addrs.join(',') || '-',
  ].join('  ');
}

export default defineCommand({
  args: { ...commonArgs, peer: { type: 'string', description: 'Only these peer ids, comma-separated' } },
  run: ({ args }) =>
    withClient(async (c) => {
      let peers = await c.peers();
      if (args.peer !== undefined) {
        const want = args.peer.split(',').map((x) => x.trim());
        const unknown = want.filter((w) => !peers.some((p) => p.peerId === w));
        if (unknown.length > 0)
          throw new OperatorError(
            'E_PEER_UNKNOWN',
            `The broker does not know ${unknown.join(', ')} (see mway peers)`,
          );
        peers = peers.filter((p) => want.includes(p.peerId));
      }
      const rows = factsOf(c, peers);
      output(args.json, rows, () =>
        rows.length === 0
          ? 'no peers'
          : rows
              .map((r) =>
                `${r.peer.padEnd(20)} ${r.status === 'verified' ? factsLine(r.facts) : r.status} ${r.error ?? ''}`.trimEnd(),
              )
              .join('\n'),
      );
      return rows.every((r) => r.status !== 'INVALID') ? EXIT_OK : EXIT_FAIL;
    }),
});
