// `milkywaysrvd audit --config FILE [--verify] [--from N] [--limit N]`: reads the audit
// chain straight from the broker database (offline, the broker may be stopped) and
// verifies the hash chain and every signed envelope in it against the config's anchors.
import { defineCommand } from 'citty';
import { commonArgs, failed, output, UsageError } from '../../../common/index.ts';
import { type Certificate, type Crl, readCertificates, readCrls } from '../../../keys/index.ts';
import { verifyAuditChain } from '../../wire/index.ts';
import { AuditLog } from '../audit-log.ts';
import { readBrokerConfig } from '../broker-config.ts';
import { BrokerDb } from '../broker-db.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    config: { type: 'string', description: 'Broker config file', required: true },
    verify: { type: 'boolean', description: 'Verify the hash chain and the signed envelopes' },
    head: { type: 'string', description: 'With --verify: the head hash the chain must end with' },
  },
  run: async ({ args }) => {
    if (args.head !== undefined && args.verify !== true) {
      throw new UsageError('--head is checked by --verify only', 'invalid', '--head');
    }
    const cfg = await readBrokerConfig(args.config);
    const db = new BrokerDb(cfg.database);
    try {
      const entries = new AuditLog(db).read(1, Number.MAX_SAFE_INTEGER);
      if (args.verify !== true) {
        output(args.json, { entries }, () =>
          entries.map((e) => `${e.seq}\t${e.time}\t${e.kind}\t${e.actor}\t${e.hash.slice(0, 16)}`).join('\n'),
        );
        return 0;
      }
      const anchors: Certificate[] = [];
      for (const a of cfg.anchors) anchors.push(...(await readCertificates(a)));
      const crls: Crl[] = [];
      for (const c of cfg.crls) crls.push(...(await readCrls(c)));
      const r = verifyAuditChain(entries, {
        anchors,
        crls,
        ...(args.head === undefined ? {} : { head: args.head }),
      });
      output(
        args.json,
        r,
        () =>
          `audit chain OK: ${r.entries} entries, ${r.envelopesVerified} signed envelopes verified, head ${r.head}`,
      );
      return 0;
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('E_AUDIT') === true) {
        const f = { code: (e as { code: string }).code, message: (e as Error).message };
        return failed(args.json, f, () => `audit chain BROKEN: ${f.message}`);
      }
      throw e;
    } finally {
      db.close();
    }
  },
});
