// Route TLS between the cluster's servers (doc/nats.md, "Route TLS between the servers"): the
// section's openssl commands and `tls` block run as written on Debian's nats-server 2.9.10, 3
// nodes on 127.0.0.1. The servers form their cluster over TLS routes and carry a command from
// one node to a peer on another; a server whose certificate another CA issued cannot join.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { NatsRelay } from '../../../control/broker/index.ts';
import { buildCommand, verifyResult } from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { freePort, ROOT, tempDir, until } from '../../helpers.ts';
import { makeFleetPki } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';

const pkiP = makeFleetPki();

/** The section's sh block (its lines) and its config block. */
async function howTo(): Promise<{ sh: string[]; block: string }> {
  const md = await readFile(join(ROOT, 'doc', 'nats.md'), 'utf8');
  const from = md.indexOf('## Route TLS between the servers');
  const section = md.slice(from, md.indexOf('\n## ', from + 1));
  const blocks = [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  const sh = blocks.find((b) => b[1] === 'sh')?.[2] ?? '';
  const block = blocks.find((b) => b[1] === '')?.[2] ?? '';
  return { sh: sh.split('\n').filter((l) => l.trim() !== ''), block: block.trim() };
}

async function routes(httpPort: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${httpPort}/routez`, { signal: AbortSignal.timeout(2000) });
  return ((await r.json()) as { num_routes?: number }).num_routes ?? 0;
}

test('the servers route over TLS with a CA of their own; a server with a certificate from another CA cannot join', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const { sh, block } = await howTo();
  t.is(sh.length, 4, sh.join('\n'));
  const run = (cwd: string) => async (line: string) => {
    const r = await execa('bash', ['--norc', '--noprofile', '-euo', 'pipefail', '-c', line], {
      cwd,
      reject: false,
      timeout: 60_000,
    });
    t.is(r.exitCode, 0, `${line}\n${r.stderr}`);
  };
  for (const l of sh) await run(dir)(l);
  t.regex(block, /^tls \{ .*verify: true.* \}$/);
  const cluster = await startNatsCluster(t, 3, { routeTls: block.replaceAll('<dir>', dir) });
  for (const n of cluster.nodes)
    await until(`${n.name} has 2 routes`, async () => (await routes(n.httpPort)) === 2);
  // A route port says nothing in plaintext (it waits for a TLS handshake, unlike a client port's
  // INFO line) and presents the certificate the CA issued.
  const routePort = Number(new URL(cluster.routeUrls[0] as string).port);
  const sock = netConnect(routePort, '127.0.0.1');
  const first = await Promise.race([
    once(sock, 'data').then(([b]) => (b as Buffer).toString('latin1')),
    new Promise<string>((r) => setTimeout(() => r('nothing'), 2000)),
  ]);
  sock.destroy();
  t.is(first, 'nothing');
  const tls = tlsConnect({
    port: routePort,
    host: '127.0.0.1',
    ca: await readFile(join(dir, 'route-ca.crt')),
  });
  const peerCn = await Promise.race([
    once(tls, 'secureConnect').then(() => String(tls.getPeerCertificate().subject?.CN)),
    once(tls, 'error').then(([e]) => `error ${(e as Error).message}`),
    new Promise<string>((r) => setTimeout(() => r('no handshake in 5 s'), 5000)),
  ]);
  tls.destroy();
  t.is(peerCn, 'mway-route');

  // A command stored through n1 reaches a peer on n3, and its answer comes back.
  const relay = await NatsRelay.open({ servers: [cluster.urls[0] as string] });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const rec = recorder();
  await natsPeerLink(t, p, p.p1, { servers: [cluster.urls[2] as string] }, { rec });
  const env = buildCommand({
    action: 'service.restart',
    args: { service: 'web' },
    audience: { fleet: 'prod', target: 'peer:p1', groups: [], peers: ['p1'] },
    seq: 1,
    key: p.admin.key,
    chain: p.admin.chain,
  });
  await relay.deliver('p1', 'job-1', env, new Date(Date.now() + 600_000).toISOString());
  const a = await relay.answer('p1', 'job-1', 60_000);
  t.is(verifyResult(a?.result as Envelope, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.deepEqual(rec.calls, ['restart web']);

  // The same commands in another folder make another CA and a server certificate under it.
  const rogueDir = join(dir, 'rogue');
  await execa('mkdir', ['-p', rogueDir]);
  for (const l of sh) await run(rogueDir)(l);
  const http = await freePort();
  const conf = join(rogueDir, 'n4.conf');
  await writeFile(
    conf,
    [
      'server_name: n4',
      `listen: 127.0.0.1:${await freePort()}`,
      `http: 127.0.0.1:${http}`,
      `cluster { name: mway-test, listen: 127.0.0.1:${await freePort()}, routes: [ ${cluster.routeUrls[0]} ], ${block.replaceAll('<dir>', rogueDir)} }`,
      '',
    ].join('\n'),
  );
  const rogue = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  rogue.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-8000);
  });
  t.teardown(() => void rogue.kill('SIGKILL'));
  await until(
    'n4 tried its route',
    () => /handshake error|unknown authority|bad certificate/i.test(stderr),
    30_000,
  );
  // Time for a route that would be accepted to be set up (the three formed theirs in this time).
  await new Promise((r) => setTimeout(r, 3000));
  t.is(await routes(http), 0, stderr);
  for (const n of cluster.nodes) t.is(await routes(n.httpPort), 2, `${n.name}`);
});
