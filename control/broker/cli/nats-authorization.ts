// `milkywaysrvd nats-authorization --users FILE [--config BROKER.json] [--out FILE]`: the
// nats-server `authorization` block for NATS mode from a users file (doc/nats-users.schema.json):
// one nkey user per broker, peer, auditor and the enrolling user, each allowed only its own
// subjects (doc/nats.md). With --config, every peer that enrolled with an nkey is added from the
// broker's database, each checked against the config's anchors and CRLs (nats-enrolled.ts).
// `include` it from every server's config and reload the servers (`nats-server --signal reload`)
// when a peer is added.
import { defineCommand } from 'citty';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
import { type Certificate, type Crl, readCertificates, readCrls } from '../../../keys/index.ts';
import { readBrokerConfig } from '../broker-config.ts';
import { BrokerDb } from '../broker-db.ts';
import { enrolledNatsUsers, withEnrolled } from '../nats-enrolled.ts';
import { natsAuthorization, natsAuthorizationConf, readNatsUsers } from '../nats-users.ts';

export default defineCommand({
  meta: {
    name: 'nats-authorization',
    description: "Write nats-server's authorization block (users, permissions) from a users file",
  },
  args: {
    ...commonArgs,
    users: {
      type: 'string',
      required: true,
      description: 'NATS users file (JSON, doc/nats-users.schema.json)',
    },
    config: {
      type: 'string',
      description:
        "Broker config: add each peer that enrolled with an nkey, from its database, checked against the config's anchors and CRLs",
    },
    out: { type: 'string', description: 'Write the block here (mode 0644) instead of stdout' },
  },
  async run({ args }) {
    let users = await readNatsUsers(args.users);
    if (args.config !== undefined) {
      const cfg = await readBrokerConfig(args.config);
      const anchors: Certificate[] = [];
      for (const a of cfg.anchors) anchors.push(...(await readCertificates(a)));
      const crls: Crl[] = [];
      for (const c of cfg.crls) crls.push(...(await readCrls(c)));
      const db = new BrokerDb(cfg.database);
      try {
        const enrolled = enrolledNatsUsers(db.enrollments(), db.peers(), { anchors, crls });
        for (const s of enrolled.skipped)
          process.stderr.write(`warning: ${s.peerId} (request ${s.requestId}) left out: ${s.reason}\n`);
        users = withEnrolled(users, enrolled);
      } finally {
        db.close();
      }
    }
    const conf = natsAuthorizationConf(users);
    if (args.out !== undefined) {
      await writeFileAtomic(args.out, conf, 0o644);
      output(
        args.json,
        { out: args.out, users: natsAuthorization(users).users.length },
        () => `wrote ${args.out}`,
      );
      return 0;
    }
    output(args.json, natsAuthorization(users), () => conf);
    return 0;
  },
});
