// `mway audit [--verify [--head HASH]]`: the broker's append-only, hash-chained log of every command and
// result envelope; --verify recomputes the chain and every envelope signature here.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import { type AuditEntry, verifyAuditChain } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import { withClient } from './shared.ts';

const AUDIT_PAGE = 4;

export default defineCommand({
  args: {
    ...commonArgs,
    verify: { type: 'boolean', description: 'Check the hash chain and the envelope signatures' },
    head: {
      type: 'string',
      description: 'With --verify: the head hash recorded earlier; the chain must end with it',
    },
    limit: {
      type: 'string',
      numeric: 'integer',
      description:
        'Show only the newest N entries (the whole chain is still fetched and, with --verify, checked)',
    },
  },
  run: ({ args }) => {
    if (args.head !== undefined && args.verify !== true)
      throw usageError('--head is checked by --verify only');
    if (args.head !== undefined && !/^[0-9a-f]{64}$/.test(args.head))
      throw usageError(`--head ${args.head}: expected the 64 hex digits of a SHA-256 hash`);
    return withClient(async (c) => {
      // Paged: an entry may hold a 2.8 MB command envelope, and one reply frame is at most 17 MiB.
      const max = args.limit === undefined ? Number.POSITIVE_INFINITY : Number(args.limit);
      if (!(max >= 1)) throw usageError(`--limit ${String(args.limit)}: expected 1 or more entries`);
      const entries: AuditEntry[] = [];
      let head: unknown = null;
      // The whole chain: the newest entries only mean something as the end of a chain that
      // starts at the genesis, and --verify checks it from there.
      for (let from = 1; ; ) {
        const r = await c.client.request('audit-get', { from, limit: AUDIT_PAGE });
        const page = (r.entries as AuditEntry[]) ?? [];
        head = r.head;
        entries.push(...page);
        if (page.length < AUDIT_PAGE) break;
        from = (page[page.length - 1] as AuditEntry).seq + 1;
      }
      const r = { head };
      if (args.verify === true) {
        const rep = verifyAuditChain(entries, {
          anchors: c.anchors,
          crls: c.crls,
          // The recorded head (--head) is what catches a broker that cut the chain short;
          // the broker's own head only checks that the pages fit together.
          ...(args.head !== undefined
            ? { head: args.head }
            : typeof r.head === 'string'
              ? { head: r.head }
              : {}),
        });
        output(
          args.json,
          { ok: true, entries: entries.length, head: r.head, report: rep },
          () => `audit log verified: ${entries.length} entries, head ${String(r.head)}`,
        );
        return 0;
      }
      const shown = Number.isFinite(max) ? entries.slice(-max) : entries;
      output(args.json, shown, () => shown.map((e) => `${e.seq} ${e.time} ${e.kind} ${e.actor}`).join('\n'));
      return 0;
    });
  },
});
