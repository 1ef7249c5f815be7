// `mway audit [--verify]`: the broker's append-only, hash-chained log of every command and
// result envelope; --verify recomputes the chain and every envelope signature here.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/cli.ts';
import { type AuditEntry, verifyAuditChain } from '../audit-log.ts';
import { withClient } from './shared.ts';

export default defineCommand({
  meta: { name: 'audit', description: "Show (and with --verify check) the broker's audit log" },
  args: {
    ...commonArgs,
    verify: { type: 'boolean', description: 'Check the hash chain and the envelope signatures' },
    limit: { type: 'string', description: 'Entries to fetch (default all, up to 100000)' },
  },
  run: ({ args }) =>
    withClient(async (c) => {
      const r = await c.client.request('audit-get', {
        from: 1,
        limit: args.limit === undefined ? 100_000 : Number(args.limit),
      });
      const entries = (r.entries as AuditEntry[]) ?? [];
      if (args.verify === true) {
        const rep = verifyAuditChain(entries, {
          anchors: c.anchors,
          crls: c.crls,
          ...(typeof r.head === 'string' ? { head: r.head } : {}),
        });
        output(
          args.json,
          { ok: true, entries: entries.length, head: r.head, report: rep },
          () => `audit log verified: ${entries.length} entries, head ${String(r.head)}`,
        );
        return 0;
      }
      output(args.json, entries, () =>
        entries.map((e) => `${e.seq} ${e.time} ${e.kind} ${e.actor}`).join('\n'),
      );
      return 0;
    }),
});
