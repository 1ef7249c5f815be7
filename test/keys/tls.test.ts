import test from 'ava';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { tlsContextOptions } from '../../keys/index.ts';
import { makePki } from './fixture.ts';

test('node:tls between a broker and a peer certificate: TLS 1.3, mutual auth, X25519MLKEM768', async (t) => {
  const p = await makePki();
  const anchors = [p.root.cert];
  let serverSide: TLSSocket | undefined;
  const server = createServer(
    {
      ...tlsContextOptions({ keyPath: p.broker.keyPath, certPath: p.broker.certPath, anchors }),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s) => {
      serverSide = s;
      s.end('hello');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = connect({
    ...tlsContextOptions({ keyPath: p.peer.keyPath, certPath: p.peer.certPath, anchors }),
    host: '127.0.0.1',
    port,
    servername: 'localhost',
  });
  const timer = setTimeout(() => client.destroy(new Error('TLS test timed out')), 10_000);
  await once(client, 'secureConnect');
  clearTimeout(timer);
  t.true(client.authorized, String(client.authorizationError));
  t.is(client.getProtocol(), 'TLSv1.3');
  t.is((client.getEphemeralKeyInfo() as { name?: string } | null)?.name, 'X25519MLKEM768');
  t.is(client.getPeerCertificate().subject.CN, 'broker');
  let data = '';
  client.on('data', (d: Buffer) => {
    data += d.toString();
  });
  await once(client, 'end');
  t.is(data, 'hello');
  t.true(serverSide?.authorized ?? false);
  t.is(serverSide?.getPeerCertificate().subject.CN, 'peer1');
  client.destroy();
});

test('node:tls refuses a client certificate from another root', async (t) => {
  const p = await makePki();
  const server = createServer({
    ...tlsContextOptions({ keyPath: p.broker.keyPath, certPath: p.broker.certPath, anchors: [p.root.cert] }),
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  // The vendor identity is not under the user root the broker trusts.
  const client = connect({
    ...tlsContextOptions({ keyPath: p.vendor.keyPath, certPath: p.vendor.certPath, anchors: [p.root.cert] }),
    host: '127.0.0.1',
    port,
    servername: 'localhost',
  });
  const err = await new Promise<unknown>((resolve) => {
    const timer = setTimeout(() => resolve(new Error('timeout')), 10_000);
    client.on('error', (e) => {
      clearTimeout(timer);
      resolve(e);
    });
    client.on('close', () => {
      clearTimeout(timer);
      resolve(new Error('closed'));
    });
    client.on('data', () => {});
  });
  t.true(err instanceof Error);
  t.notRegex(String(err), /timeout/);
  client.destroy();
});
