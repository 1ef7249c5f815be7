// `milkywaysrvd check-config --config FILE`: everything `serve` would refuse at start, checked
// without starting (for `ExecStartPre=` and before a restart): the config against its schema,
// the anchors and CRLs readable and valid, the certificate of the broker role, the key private
// (mode 0600) and the key of that certificate (node:tls builds the context, as serve does), and
// the database's folder present. Exit 0 and a summary, or the failure shape naming what is wrong.
import { access, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { defineCommand } from 'citty';
import { commonArgs, errorMessage, output } from '../../../common/index.ts';
import { tlsContextOptions } from '../../../keys/index.ts';
import { BrokerError } from '../broker-error.ts';
import { loadBrokerSetup } from './serve.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    config: { type: 'string', required: true, description: 'Broker config file (JSON, doc/broker.md)' },
  },
  async run({ args }) {
    const { cfg, anchors, crls, leaf } = await loadBrokerSetup(args.config);
    const tls = tlsContextOptions({ keyPath: cfg.key, certPath: cfg.certificate, anchors });
    try {
      createSecureContext(tls);
    } catch (e) {
      throw new BrokerError(
        'E_CONFIG',
        `Key ${cfg.key} is not the key of ${cfg.certificate}: ${errorMessage(e)}`,
        {
          path: cfg.key,
          cause: e,
        },
      );
    }
    const dbDir = dirname(cfg.database);
    try {
      await access(dbDir, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw new BrokerError(
        'E_CONFIG',
        `Database folder ${dbDir} is missing or not writable: ${errorMessage(e)}`,
        {
          path: dbDir,
          cause: e,
        },
      );
    }
    const summary = {
      config: args.config,
      listen: `${cfg.listen.host}:${cfg.listen.port}`,
      database: cfg.database,
      certificate: {
        subject: leaf.subject,
        fingerprint: leaf.fingerprint,
        notAfter: leaf.notAfter.toISOString(),
      },
      anchors: anchors.length,
      crls: crls.length,
      mdns: cfg.mdns.enabled,
      health: cfg.health === undefined ? null : `${cfg.health.host}:${cfg.health.port}`,
    };
    output(
      args.json,
      summary,
      () =>
        `${args.config}: OK — listens on ${summary.listen}, certificate ${leaf.subject} (${leaf.fingerprint}), ${anchors.length} anchor(s), ${crls.length} CRL(s)`,
    );
    return 0;
  },
});
