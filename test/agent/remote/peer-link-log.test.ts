// The peer link's log lines carry fields (peer, broker, code, job, group), through the agent's
// one logging module: with the JSON format (--log-format json) each is one object whose fields
// a log shipper reads without parsing the message.
import test from 'ava';
import { createAgentLogger } from '../../../agent/core/agent-log.ts';
import { startPeerLink } from '../../../agent/remote/peer-link.ts';
import { makeFleetPki } from '../../control/command-fixture.ts';
import { freePort, tempDir, until } from '../../helpers.ts';
import { recorder } from './recording-agent.ts';

test('a peer link that cannot reach its broker logs peer, broker and code as JSON fields', async (t) => {
  const p = await makeFleetPki();
  const dir = await tempDir(t);
  const lines: string[] = [];
  const logger = createAgentLogger({ kmsg: false, console: (l) => lines.push(l) });
  logger.setFormat('json');
  // Nothing listens on the port: each attempt is refused.
  const address = `127.0.0.1:${await freePort()}`;
  const link = await startPeerLink({
    api: recorder().api,
    stateDir: dir,
    log: logger.log,
    config: {
      broker: address,
      fleet: 'prod',
      key: p.p1.keyPath,
      cert: p.p1.certPath,
      ...(p.p1.kemKeyPath === undefined ? {} : { kemKey: p.p1.kemKeyPath }),
      anchors: [p.root.certPath],
      maxBackoffMs: 200,
    },
  });
  t.teardown(() => link.stop());
  const refused = () =>
    lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((o) => String(o.msg).startsWith(`control: cannot connect to ${address}`));
  await until('a refused connection logged', () => refused() !== undefined);
  // Nothing listening: its own code (not a broker we distrust), the message says ECONNREFUSED.
  t.regex(String(refused()?.msg), /ECONNREFUSED/);
  t.like(refused(), {
    level: 'warn',
    source: 'milkyway-agent',
    peer: 'p1',
    broker: address,
    code: 'E_BROKER_UNREACHABLE',
  });
});
