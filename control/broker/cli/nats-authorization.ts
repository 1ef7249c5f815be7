// `milkywaysrvd nats-authorization --users FILE [--out FILE]`: the nats-server `authorization`
// block for NATS mode from a users file (doc/nats-users.schema.json): one nkey user per broker,
// peer and auditor, each allowed only its own subjects (doc/nats.md). `include` it from every
// server's config and reload the servers (`nats-server --signal reload`) when a peer is added.
import { defineCommand } from 'citty';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
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
    out: { type: 'string', description: 'Write the block here (mode 0644) instead of stdout' },
  },
  async run({ args }) {
    const users = await readNatsUsers(args.users);
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
