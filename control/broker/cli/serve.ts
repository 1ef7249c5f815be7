// `milkywaysrvd --config FILE`: runs the broker until SIGTERM/SIGINT. Prints one line when
// it listens (address, certificate fingerprint; JSON with --json) so scripts and tests can
// wait for it.
import { defineCommand } from 'citty';
import { commonArgs } from '../../../common/index.ts';
import {
  type Certificate,
  type Crl,
  readCertificates,
  readCrls,
  tlsContextOptions,
} from '../../../keys/index.ts';
import { Broker } from '../broker.ts';
import { readBrokerConfig } from '../broker-config.ts';
import { advertiseBroker, type Advertisement } from '../../wire/index.ts';
import { BrokerError } from '../broker-error.ts';

export const serveArgs = {
  ...commonArgs,
  config: { type: 'string', description: 'Broker config file (JSON, doc/broker.md)', required: true },
} as const;

export async function serve(args: { config: string; json?: boolean | undefined }): Promise<number> {
  const cfg = await readBrokerConfig(args.config);
  const anchors: Certificate[] = [];
  for (const a of cfg.anchors) anchors.push(...(await readCertificates(a)));
  const crls: Crl[] = [];
  for (const c of cfg.crls) crls.push(...(await readCrls(c)));
  const leaf = (await readCertificates(cfg.certificate))[0];
  if (leaf === undefined || leaf.role !== 'broker') {
    throw new BrokerError('E_CONFIG', `Broker certificate ${cfg.certificate} does not have the broker role`, {
      path: cfg.certificate,
    });
  }
  const log = (level: string, m: string): void => {
    process.stderr.write(`milkywaysrvd: ${level}: ${m}\n`);
  };
  const broker = await Broker.start({
    dbPath: cfg.database,
    tls: tlsContextOptions({ keyPath: cfg.key, certPath: cfg.certificate, anchors }),
    certificate: leaf,
    anchors,
    crls,
    host: cfg.listen.host,
    port: cfg.listen.port,
    expirySweepMs: cfg.expirySweepMs,
    log,
  });
  let ad: Advertisement | undefined;
  if (cfg.mdns.enabled) {
    try {
      ad = await advertiseBroker({
        name: cfg.mdns.name,
        port: broker.port,
        fingerprint: broker.fingerprint,
        ...(cfg.listen.host === '0.0.0.0' ? {} : { host: cfg.listen.host }),
        ...(cfg.mdns.port === undefined ? {} : { mdnsPort: cfg.mdns.port }),
      });
    } catch (e) {
      // The broker is still reachable by address; say why discovery is off.
      log('warn', (e as Error).message);
    }
  }
  const info = {
    listening: `${cfg.listen.host}:${broker.port}`,
    fingerprint: broker.fingerprint,
    database: cfg.database,
    mdns: ad !== undefined,
  };
  process.stdout.write(
    args.json === true
      ? `${JSON.stringify(info)}\n`
      : `milkywaysrvd: listening on ${info.listening}, certificate ${info.fingerprint}${info.mdns ? ', advertised by mDNS' : ''}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await ad?.stop();
  await broker.close();
  return 0;
}

export default defineCommand({
  meta: { name: 'serve', description: 'Run the broker (same as milkywaysrvd --config FILE)' },
  args: serveArgs,
  run: ({ args }) => serve(args),
});
