// `milkywaysrvd nats-authorization --config BROKER.json [--bindings DIR] [--users FILE] [--out FILE]`:
// the nats-server `authorization` block for NATS mode: one nkey user per broker, peer, auditor and
// the enrolling user, each allowed only its own subjects (doc/nats.md). With --config, every peer
// that enrolled with an nkey is added from the broker's database (nats-enrolled.ts) and every
// signed binding in --bindings (nats-bindings.ts), each checked now against the config's anchors
// and CRLs: what fails is left out and named on stderr. --users adds users listed by hand
// (doc/nats-users.schema.json). `include` the block from every server's config and reload the
// servers (SIGHUP) after each run: that is how a new peer, and a revocation, reach them.
import { defineCommand } from 'citty';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
import { type Certificate, type Crl, readCertificates, readCrls } from '../../../keys/index.ts';
import { readBrokerConfig } from '../broker-config.ts';
import { BrokerDb } from '../broker-db.ts';
import { BrokerError } from '../broker-error.ts';
import { boundNatsUsers, readNatsBindings, withBound } from '../nats-bindings.ts';
import { enrolledNatsUsers, withEnrolled } from '../nats-enrolled.ts';
import { type NatsUsers, natsAuthorization, natsAuthorizationConf, readNatsUsers } from '../nats-users.ts';

export default defineCommand({
  meta: {
    name: 'nats-authorization',
    description: "Write nats-server's authorization block (users, permissions) from a users file",
  },
  args: {
    ...commonArgs,
    users: {
      type: 'string',
      description: 'NATS users listed by hand (JSON, doc/nats-users.schema.json)',
    },
    bindings: {
      type: 'string',
      description: 'Folder of signed NATS bindings (milkywaysrvd nats-user --binding; needs --config)',
    },
    config: {
      type: 'string',
      description:
        "Broker config: add each peer that enrolled with an nkey, from its database, checked against the config's anchors and CRLs",
    },
    out: { type: 'string', description: 'Write the block here (mode 0644) instead of stdout' },
  },
  async run({ args }) {
    if (args.users === undefined && args.config === undefined)
      throw new BrokerError(
        'E_CONFIG',
        'nats-authorization: give --config (and --bindings), --users, or both',
      );
    if (args.bindings !== undefined && args.config === undefined)
      throw new BrokerError(
        'E_CONFIG',
        'nats-authorization: --bindings needs --config (the anchors and CRLs they are checked against)',
      );
    let users: NatsUsers | undefined = args.users === undefined ? undefined : await readNatsUsers(args.users);
    if (args.config !== undefined) {
      const cfg = await readBrokerConfig(args.config);
      const anchors: Certificate[] = [];
      for (const a of cfg.anchors) anchors.push(...(await readCertificates(a)));
      const crls: Crl[] = [];
      for (const c of cfg.crls) crls.push(...(await readCrls(c)));
      const db = new BrokerDb(cfg.database);
      try {
        const peers = db.peers();
        const files = args.bindings === undefined ? [] : await readNatsBindings(args.bindings);
        const bound = boundNatsUsers(files, { anchors, crls, peers });
        for (const s of bound.skipped) process.stderr.write(`warning: ${s.source} left out: ${s.reason}\n`);
        users = withBound(users, bound);
        const enrolled = enrolledNatsUsers(db.enrollments(), peers, { anchors, crls });
        for (const s of enrolled.skipped)
          process.stderr.write(`warning: ${s.peerId} (request ${s.requestId}) left out: ${s.reason}\n`);
        users = withEnrolled(users, enrolled);
      } finally {
        db.close();
      }
    }
    // Only without --config can there be no users yet; withBound then names what is missing.
    const all = users ?? withBound(undefined, { peers: {}, auditors: {}, skipped: [] });
    const conf = natsAuthorizationConf(all);
    if (args.out !== undefined) {
      await writeFileAtomic(args.out, conf, 0o644);
      output(
        args.json,
        { out: args.out, users: natsAuthorization(all).users.length },
        () => `wrote ${args.out}`,
      );
      return 0;
    }
    output(args.json, natsAuthorization(all), () => conf);
    return 0;
  },
});
