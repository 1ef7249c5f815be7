import test from 'ava';
import { connect } from 'node:tls';
import { type Connection, connectBroker, listenTls } from '../../../control/wire/transport.ts';
import { encodeFrame, message } from '../../../control/wire/protocol.ts';
import { freePort } from '../../helpers.ts';
import { makeFleetPki, tlsOf } from '../broker-fixture.ts';

const pki = await makeFleetPki(1);

test('connectBroker(): TLS 1.3, mutual auth, X25519MLKEM768, hello/reply both ways', async (t) => {
  const conns: Connection[] = [];
  const l = await listenTls({
    tls: tlsOf(pki, pki.broker),
    onConnection: (c) => {
      conns.push(c);
      c.onMessage((m) => {
        if (m.kind === 'hello')
          c.send(
            message('reply', { re: m.id, role: m.role, identity: c.peerCertificate()?.peerId, broker: 'fp' }),
          );
      });
    },
  });
  t.teardown(() => l.close());
  const peer = pki.peers[0];
  if (peer === undefined) throw new Error('no peer');
  const client = await connectBroker({ address: `127.0.0.1:${l.port}`, tls: tlsOf(pki, peer), role: 'peer' });
  t.teardown(() => client.close());
  t.is(client.welcome.identity, 'peer-1');
  t.is(client.broker.role, 'broker');
  t.is(client.connection.socket.getProtocol(), 'TLSv1.3');
  t.is(client.connection.keyExchange(), 'X25519MLKEM768');
  const server = conns[0];
  t.true(server?.socket.authorized ?? false);
  // getEphemeralKeyInfo() answers on the client side only; the server sees the same handshake.
  t.is(server?.peerCertificate()?.role, 'peer');
});

test('connectBroker() refuses a server whose certificate is not a broker, or has another fingerprint', async (t) => {
  const peer = pki.peers[0];
  if (peer === undefined) throw new Error('no peer');
  // A peer certificate chains to the same root but must not be accepted as a broker.
  const l = await listenTls({ tls: tlsOf(pki, peer), onConnection: () => {} });
  t.teardown(() => l.close());
  const e = await t.throwsAsync(
    connectBroker({ address: `127.0.0.1:${l.port}`, tls: tlsOf(pki, pki.operator), role: 'operator' }),
  );
  t.is((e as { code?: string }).code, 'E_BROKER_UNTRUSTED');
  const b = await listenTls({ tls: tlsOf(pki, pki.broker), onConnection: () => {} });
  t.teardown(() => b.close());
  const e2 = await t.throwsAsync(
    connectBroker({
      address: `127.0.0.1:${b.port}`,
      tls: tlsOf(pki, pki.operator),
      role: 'operator',
      brokerFingerprint: '00'.repeat(32),
    }),
  );
  t.is((e2 as { code?: string }).code, 'E_BROKER_UNTRUSTED');
});

test('connectBroker() to a port where nothing listens: E_BROKER_UNREACHABLE, not a distrusted broker', async (t) => {
  const port = await freePort();
  const e = await t.throwsAsync(
    connectBroker({ address: `127.0.0.1:${port}`, tls: tlsOf(pki, pki.operator), role: 'operator' }),
  );
  t.is((e as { code?: string }).code, 'E_BROKER_UNREACHABLE');
  t.regex(e?.message ?? '', new RegExp(`broker 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
});

test('an oversized frame header closes the connection without buffering', async (t) => {
  let closed: (r: Error | undefined) => void = () => {};
  const done = new Promise<Error | undefined>((r) => {
    closed = r;
  });
  const l = await listenTls({
    tls: tlsOf(pki, pki.broker),
    maxFrame: 1024,
    onConnection: (c) => c.onClose(closed),
  });
  t.teardown(() => l.close());
  const s = connect({
    ...tlsOf(pki, pki.operator),
    host: '127.0.0.1',
    port: l.port,
    checkServerIdentity: () => undefined,
  });
  t.teardown(() => s.destroy());
  s.on('error', () => {});
  s.on('secureConnect', () => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(1_000_000, 0);
    s.write(h);
  });
  const reason = await done;
  t.is((reason as { code?: string } | undefined)?.code, 'E_FRAME_TOO_LARGE');
  t.true(encodeFrame(message('ping')).length > 4);
});
