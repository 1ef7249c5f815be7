// `mway audit [--nats] [--verify [--head HASH]]`: the broker's append-only, hash-chained log of every
// command and result envelope; --verify recomputes the chain and every envelope signature here.
// With --nats the chain is folded from NATS mode's audit stream instead (doc/nats.md), read
// straight from the servers as the config's auditor: no broker is asked.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../../common/index.ts';
import type { Certificate, Crl } from '../../../keys/index.ts';
import { type AuditEntry, natsAuditEntries, verifyAuditChain } from '../../wire/index.ts';
import { OperatorClient, readOperatorConfig } from '../operator-client.ts';
import { OperatorError, usageError } from '../operator-error.ts';
import { withClient } from './shared.ts';

const AUDIT_PAGE = 4;

export default defineCommand({
  args: {
    ...commonArgs,
    verify: { type: 'boolean', description: 'Check the hash chain and the envelope signatures' },
    nats: {
      type: 'boolean',
      description: "Fold the chain from NATS mode's audit stream (the config's nats section), not the broker",
    },
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
    const max = args.limit === undefined ? Number.POSITIVE_INFINITY : Number(args.limit);
    if (!(max >= 1)) throw usageError(`--limit ${String(args.limit)}: expected 1 or more entries`);
    const show = (
      entries: AuditEntry[],
      head: unknown,
      trust: { anchors: Certificate[]; crls: Crl[] },
    ): number => {
      if (args.verify === true) {
        const rep = verifyAuditChain(entries, {
          anchors: trust.anchors,
          crls: trust.crls,
          // The recorded head (--head) is what catches a broker that cut the chain short;
          // the broker's own head only checks that the pages fit together.
          ...(args.head !== undefined ? { head: args.head } : typeof head === 'string' ? { head } : {}),
        });
        const shownHead = typeof head === 'string' ? head : rep.head;
        output(
          args.json,
          { entries: entries.length, head: shownHead, report: rep },
          () => `audit log verified: ${entries.length} entries, head ${shownHead}`,
        );
        return 0;
      }
      const shown = Number.isFinite(max) ? entries.slice(-max) : entries;
      output(args.json, shown, () => shown.map((e) => `${e.seq} ${e.time} ${e.kind} ${e.actor}`).join('\n'));
      return 0;
    };
    if (args.nats === true) {
      return (async () => {
        const cfg = await readOperatorConfig();
        if (cfg.nats === undefined)
          throw new OperatorError(
            'E_CONFIG',
            'mway audit --nats needs a nats section in the operator config',
            {
              details: { field: 'nats' },
            },
          );
        const trust = await OperatorClient.trust(cfg);
        // No head from anyone else: the chain is recomputed here, and --head checks its end.
        return show(await natsAuditEntries(cfg.nats), undefined, trust);
      })();
    }
    return withClient(async (c) => {
      // Paged: an entry may hold a 2.8 MB command envelope, and one reply frame is at most 17 MiB.
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
      return show(entries, head, c);
    });
  },
});
