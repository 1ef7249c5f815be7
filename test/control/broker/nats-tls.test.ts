// What NATS's own TLS gives a MilkyWay client (doc/nats.md, "What NATS's classical TLS exposes"):
// Debian 12's nats-server 2.9.10 with a `tls` block (an ECDSA P-256 certificate made by openssl:
// Go's TLS cannot use our ML-DSA certificates) upgrades a client connection after its plaintext
// INFO line, and the key exchange it agrees with Node 24's client is classical X25519, although
// the same client offers X25519MLKEM768 and gets it from a Node TLS server. So what crosses
// NATS is as safe as X25519 against a recording adversary, which is the argument doc/nats.md
// makes about results and statuses.
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer } from 'node:tls';
import test from 'ava';
import { execa } from 'execa';
import { NatsRelay } from '../../../control/broker/index.ts';
import { buildCommand, connectNats, natsAuditEntries, verifyResult } from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';
import { BINS, cli, jsonOut, tempDir, until } from '../../helpers.ts';

const pkiP = makeFleetPki();

/** The first line a NATS server sends (`INFO {json}`), read from a plain socket. */
async function infoLine(port: number) {
  const sock = netConnect(port, '127.0.0.1');
  // Read without an async iterator: leaving one early destroys the socket TLS goes on with.
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n')) return;
      sock.off('data', onData);
      sock.pause();
      resolve(buf.slice(0, buf.indexOf('\r\n')));
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
  if (!line.startsWith('INFO ')) throw new Error(`not an INFO line: ${line}`);
  return { sock, info: JSON.parse(line.slice(5)) as { tls_required?: boolean; version?: string } };
}

test("Debian's nats-server 2.9.10 with TLS agrees on classical X25519 with a client that offers X25519MLKEM768; with nats.ca the protocol runs over it", async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const cert = join(dir, 'nats.crt');
  const key = join(dir, 'nats.key');
  await execa(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=nats-test',
      '-addext',
      // The client may name a server by its advertised address or as localhost.
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { timeout: 30_000 },
  );
  const tlsConf = join(dir, 'tls.conf');
  await writeFile(tlsConf, `tls { cert_file: "${cert}", key_file: "${key}" }\n`);
  const cluster = await startNatsCluster(t, 3, { include: tlsConf });
  const ca = await readFile(cert, 'utf8');
  const port = Number(new URL(cluster.urls[0] as string).port);

  const { sock, info } = await infoLine(port);
  t.true(info.tls_required, 'the server asks for TLS after its INFO line');
  t.regex(info.version ?? '', /^2\.9\./);
  const s = tlsConnect({ socket: sock, ca, host: '127.0.0.1' });
  await once(s, 'secureConnect');
  t.is(s.getProtocol(), 'TLSv1.3');
  t.deepEqual(s.getEphemeralKeyInfo(), { type: 'ECDH', name: 'X25519', size: 253 });
  s.destroy();

  // MilkyWay's own NATS client upgrades to TLS when the server asks, and checks the server's
  // certificate against Node's CA store (a private CA is not in it: refused, never plaintext).
  const refused = await t.throwsAsync(
    connectNats({ servers: cluster.urls, who: { role: 'broker' }, name: 'tls-probe' }),
  );
  t.is((refused as { code?: string }).code, 'E_NATS_TLS');
  t.regex(refused?.message ?? '', /self-signed certificate.*no nats\.ca configured/);

  // With the CA named (`nats.ca`), the whole protocol runs over that TLS: the relay stores a
  // command, a peer link runs it and answers, an auditor folds the audit stream.
  const caFile = cert;
  const relay = await NatsRelay.open({ servers: cluster.urls, ca: caFile });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const rec = recorder();
  await natsPeerLink(t, p, p.p1, { servers: cluster.urls, ca: caFile }, { rec });
  const env = buildCommand({
    action: 'service.restart',
    args: { service: 'web' },
    audience: { fleet: 'prod', target: 'peer:p1', groups: [], peers: ['p1'] },
    seq: 1,
    key: p.admin.key,
    chain: p.admin.chain,
  });
  await relay.deliver('p1', 'job-tls', env, new Date(Date.now() + 600_000).toISOString());
  const answer = await relay.answer('p1', 'job-tls', 60_000);
  t.is(verifyResult(answer?.result as Envelope, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.deepEqual(rec.calls, ['restart web']);
  await until('both copied to the audit stream', async () => {
    const entries = await natsAuditEntries({ servers: cluster.urls, name: 'alice', ca: caFile });
    return entries.length === 2;
  });
  // From config files with `ca`, as a user runs them: `mway audit --nats --verify` (the operator
  // config) folds the same 2 entries over TLS, and `milkywaysrvd serve` (the broker config)
  // connects to the servers over TLS (their own /connz reports its TLS version).
  const cfgDir = join(dir, 'mway');
  await mkdir(cfgDir);
  await writeFile(
    join(cfgDir, 'config.json'),
    JSON.stringify({
      broker: '127.0.0.1:1',
      fleet: 'prod',
      key: p.admin.keyPath,
      cert: p.admin.certPath,
      anchors: [p.root.certPath],
      nats: { servers: cluster.urls, name: 'alice', ca: caFile },
    }),
  );
  const audit = await cli('mway', ['audit', '--nats', '--verify', '--json'], {
    env: { MWAY_CONFIG_DIR: cfgDir },
  });
  t.is(audit.exitCode, 0, audit.stderr);
  t.like(jsonOut(audit.stdout), { entries: 2, report: { envelopesVerified: 2 } });
  await mkdir(join(dir, 'state'));
  const brokerConf = join(dir, 'broker.json');
  await writeFile(
    brokerConf,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      database: 'state/broker.db',
      mdns: { enabled: false },
      nats: { servers: cluster.urls, replicas: 3, ca: caFile },
    }),
  );
  const srv = execa(process.execPath, [BINS.milkywaysrvd, 'serve', '--config', brokerConf], {
    reject: false,
    timeout: 90_000,
    cwd: dir,
  });
  t.teardown(() => void srv.kill('SIGKILL'));
  const brokerTls = async () => {
    for (const n of cluster.nodes) {
      const v = (await fetch(`http://127.0.0.1:${n.httpPort}/connz`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.json())
        .catch(() => ({}))) as { connections?: Array<{ name?: string; tls_version?: string }> };
      const c = (v.connections ?? []).find((x) => x.name === 'milkywaysrvd');
      if (c !== undefined) return c.tls_version ?? 'plaintext';
    }
    return undefined;
  };
  await until('milkywaysrvd connected to the servers', async () => (await brokerTls()) !== undefined, 60_000);
  t.is(await brokerTls(), '1.3');
  srv.kill('SIGTERM');
  await srv;

  // A CA file that is not one is E_NATS_TLS naming it.
  const junk = join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate\n');
  const bad = await t.throwsAsync(
    connectNats({ servers: cluster.urls, who: { role: 'broker' }, name: 'tls-probe', ca: junk }),
  );
  t.is((bad as { code?: string }).code, 'E_NATS_TLS');
  t.true(bad?.message.includes(junk));

  // The same client against a Node 24 (OpenSSL 3.5) TLS server gets the hybrid group: what
  // limits the key exchange is the server's side (Go 1.19's crypto/tls in Debian's build).
  const server = createServer({ cert: ca, key: await readFile(key, 'utf8') }, (c) => c.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const addr = server.address() as { port: number };
  const n = tlsConnect({ port: addr.port, host: '127.0.0.1', ca });
  await once(n, 'secureConnect');
  t.is((n.getEphemeralKeyInfo() as { name?: string } | null)?.name, 'X25519MLKEM768');
  n.destroy();
});
