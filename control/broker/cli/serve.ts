// `milkywaysrvd --config FILE`: runs the broker until SIGTERM/SIGINT. Prints one line when
// it listens (address, certificate fingerprint; JSON with --json) so scripts and tests can
// wait for it.
import { lstat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, jsonLine, type LogFields, logFormatOf, logLine } from '../../../common/index.ts';
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
import { type HealthEndpoint, startHealthEndpoint } from '../health-endpoint.ts';
import { sdNotify } from '../sd-notify.ts';

export const serveArgs = {
  ...commonArgs,
  config: { type: 'string', description: 'Broker config file (JSON, doc/broker.md)', required: true },
  'log-format': {
    type: 'enum',
    options: ['text', 'json'] as string[],
    description: 'Log lines on stderr: text (timestamped) or json (one object a line); env MWAY_LOG_FORMAT',
  },
} as const;

/** The config and everything it names, read and checked (serve and check-config share it). */
export async function loadBrokerSetup(path: string) {
  const cfg = await readBrokerConfig(path);
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
  return { cfg, anchors, crls, leaf };
}

export async function serve(args: {
  config: string;
  json?: boolean | undefined;
  'log-format'?: string | undefined;
}): Promise<number> {
  const { cfg, anchors, crls, leaf } = await loadBrokerSetup(args.config);
  const format = logFormatOf(args['log-format']);
  const log = (level: string, m: string, fields?: LogFields): void => {
    process.stderr.write(logLine(format, 'milkywaysrvd', level, m, fields));
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
    ...(cfg.nats === undefined ? {} : { nats: cfg.nats }),
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
  let health: HealthEndpoint | undefined;
  if (cfg.health !== undefined) {
    try {
      health = await startHealthEndpoint({ ...cfg.health, report: () => broker.health() });
    } catch (e) {
      await ad?.stop();
      await broker.close();
      throw new BrokerError(
        'E_CONFIG',
        `Cannot serve /healthz on ${cfg.health.host}:${cfg.health.port}: ${(e as Error).message}`,
        { cause: e, details: { field: 'health.listen' } },
      );
    }
  }
  const stopReload = watchCrls(cfg.crls, broker, log);
  const info = {
    listening: `${cfg.listen.host}:${broker.port}`,
    fingerprint: broker.fingerprint,
    database: cfg.database,
    mdns: ad !== undefined,
    health:
      health === undefined ? null : `http://${hostForUrl(cfg.health?.host ?? '')}:${health.port}/healthz`,
  };
  if (args.json === true) jsonLine(info);
  else
    process.stdout.write(
      `milkywaysrvd: listening on ${info.listening}, certificate ${info.fingerprint}${info.mdns ? ', advertised by mDNS' : ''}${info.health === null ? '' : `, health at ${info.health}`}\n`,
    );
  // Under systemd (Type=notify): ready only now that it listens.
  await sdNotify({ READY: '1', STATUS: `listening on ${info.listening}` }).catch((e: unknown) =>
    log('warn', `cannot notify systemd: ${(e as Error).message}`),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await sdNotify({ STOPPING: '1' }).catch(() => {});
  stopReload();
  await ad?.stop();
  // /healthz says "stopping" (503) while the broker closes, then goes away.
  await broker.close();
  await health?.close();
  return 0;
}

/** An IPv6 host in a URL goes in brackets. */
function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** How often the CRL files are checked for a change (a revocation takes effect within this). */
export const CRL_POLL_MS = 2000;

async function readCrlFiles(files: readonly string[]): Promise<Crl[]> {
  const out: Crl[] = [];
  for (const f of files) out.push(...(await readCrls(f)));
  return out;
}

async function stamp(files: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const f of files) {
    const st = await lstat(f).catch(() => undefined);
    parts.push(st === undefined ? '-' : `${st.ino}:${st.size}:${st.mtimeMs}`);
  }
  return parts.join('|');
}

/**
 * Reloads the CRL files when one changes (checked every CRL_POLL_MS) and on SIGHUP, and puts
 * them in force in the running broker; a file that does not read or verify is logged and the
 * previous list stays (a damaged file must not lift a revocation).
 */
function watchCrls(
  files: readonly string[],
  broker: Broker,
  log: (level: string, m: string, fields?: LogFields) => void,
): () => void {
  if (files.length === 0) return () => {};
  let last: string | undefined;
  let busy = false;
  const reload = async (why: string): Promise<void> => {
    try {
      const list = await readCrlFiles(files);
      const cut = broker.setCrls(list);
      const revoked = list.reduce((n, c) => n + c.serials.length, 0);
      log(
        'info',
        `CRLs reloaded (${why}): ${list.length} list(s), ${revoked} revoked${cut.length === 0 ? '' : `; disconnected ${cut.join(', ')}`}`,
        { lists: list.length, revoked, disconnected: cut.length },
      );
    } catch (e) {
      log('warn', `cannot reload CRLs (${why}), keeping the previous ones: ${(e as Error).message}`, {
        code: (e as { code?: string }).code,
      });
    }
  };
  void stamp(files).then((s) => {
    last = s;
  });
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void stamp(files)
      .then(async (s) => {
        if (last !== undefined && s !== last) await reload('file changed');
        last = s;
      })
      .finally(() => {
        busy = false;
      });
  }, CRL_POLL_MS);
  timer.unref();
  const onHup = (): void => void reload('SIGHUP');
  process.on('SIGHUP', onHup);
  return () => {
    clearInterval(timer);
    process.off('SIGHUP', onHup);
  };
}

export default defineCommand({
  args: serveArgs,
  run: ({ args }) => serve(args),
});
