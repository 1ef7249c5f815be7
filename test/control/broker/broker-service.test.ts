// milkywaysrvd as a service: check-config refuses what serve would (without starting), the
// broker sends READY=1 to a real NOTIFY_SOCKET (a unix datagram socket bound by Python, which
// we did not write) only once it listens, and the shipped unit passes `systemd-analyze verify`.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { BINS, cli, jsonOut, ROOT, tempDir } from '../../helpers.ts';
import { type FleetPki, makeFleetPki } from '../broker-fixture.ts';

const pki = await makeFleetPki(1);

async function writeConfig(dir: string, p: FleetPki, over: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, 'broker.json');
  await mkdir(join(dir, 'state'), { recursive: true });
  const cfg = {
    listen: '127.0.0.1:0',
    key: p.broker.keyPath,
    certificate: p.broker.certPath,
    anchors: [p.root.certPath],
    database: 'state/broker.db',
    mdns: { enabled: false },
    ...over,
  };
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

test('milkywaysrvd check-config passes a good config and names what is wrong in a bad one', async (t) => {
  const dir = await tempDir(t);
  const good = await cli('milkywaysrvd', ['check-config', '--config', await writeConfig(dir, pki), '--json']);
  t.is(good.exitCode, 0, good.stderr);
  t.like(jsonOut(good.stdout), { listen: '127.0.0.1:0', anchors: 1 });
  // The operator's key with the broker's certificate: node:tls refuses the pair.
  const wrongKey = await writeConfig(dir, pki, { key: pki.operator.keyPath });
  const k = await cli('milkywaysrvd', ['check-config', '--config', wrongKey, '--json']);
  t.is(k.exitCode, 1, k.stdout);
  t.like(jsonOut(k.stdout), { ok: false, error: { code: 'E_CONFIG', path: pki.operator.keyPath } });
  // A certificate without the broker role is refused as serve refuses it.
  const role = await writeConfig(dir, pki, { certificate: pki.operator.certPath, key: pki.operator.keyPath });
  const r = await cli('milkywaysrvd', ['check-config', '--config', role]);
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /E_CONFIG: .*does not have the broker role/);
  const missing = await cli('milkywaysrvd', ['check-config', '--config', join(dir, 'none.json')]);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /E_CONFIG: Cannot read broker config/);
});

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
s.settimeout(60)
while True:
    m = s.recv(4096).decode()
    print(m.replace("\\n", " "), flush=True)
    if "STOPPING=1" in m:
        break
`;

test('milkywaysrvd sends READY=1 to NOTIFY_SOCKET once it listens, logs SIGHUP as JSON, STOPPING=1 on SIGTERM', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t);
  const sock = join(dir, 'notify.sock');
  const rx = spawn('/usr/bin/python3', ['-c', RECEIVER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => rx.kill('SIGKILL'));
  const lines: string[] = [];
  const got = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(lines)}`)), 60_000);
      const check = () => {
        const l = lines.find((x) => re.test(x));
        if (l !== undefined) {
          clearTimeout(timer);
          resolve(l);
        } else setTimeout(check, 50);
      };
      check();
    });
  let buf = '';
  rx.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  await got(/^bound$/);
  // A CRL for the broker to reload on SIGHUP (made by the operator CLI, as a user does).
  const crl = join(dir, 'root.crl');
  const made = await cli('mway', [
    'keys',
    'crl',
    '--issuer-key',
    pki.root.keyPath,
    '--issuer-cert',
    pki.root.certPath,
    '--crl',
    crl,
  ]);
  t.is(made.exitCode, 0, made.stderr);
  const config = await writeConfig(dir, pki, { crls: [crl] });
  const proc = execa(
    process.execPath,
    [BINS.milkywaysrvd, 'serve', '--config', config, '--json', '--log-format', 'json'],
    { reject: false, timeout: 90_000, env: { NOTIFY_SOCKET: sock }, buffer: true },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  t.teardown(() => proc.kill('SIGKILL'));
  const ready = await got(/READY=1/);
  t.regex(ready, /STATUS=listening on 127\.0\.0\.1:\d+/);
  // READY=1 came after the broker listens: the port it names accepts a connection now.
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(ready)?.[1]);
  const { connect } = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve();
    });
    c.on('error', reject);
  });
  // --log-format json: SIGHUP reloads the CRLs and says so in one JSON line with a timestamp.
  proc.kill('SIGHUP');
  const deadline = Date.now() + 30_000;
  let logged: Record<string, unknown> | undefined;
  while (logged === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    logged = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => String(l.msg).startsWith('CRLs reloaded (SIGHUP)'));
  }
  // The fields of the line (common/log-line.ts), beside the message.
  t.like(logged, { level: 'info', source: 'milkywaysrvd', lists: 1, revoked: 0, disconnected: 0 });
  t.regex(String(logged?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  proc.kill('SIGTERM');
  await got(/STOPPING=1/);
  const r = await proc;
  t.is(r.exitCode, 0, String(r.stderr));
});

test('the shipped systemd unit passes systemd-analyze verify with no unknown keys', async (t) => {
  const dir = await tempDir(t);
  const unit = await readFile(join(ROOT, 'control/broker/systemd/milkywaysrvd.service'), 'utf8');
  t.regex(unit, /^Type=notify$/m);
  t.regex(unit, /^StateDirectory=milkywaysrvd$/m);
  t.regex(unit, /^ExecStartPre=.* check-config --config /m);
  // verify needs the programs to exist: point them at a program that does, nothing else changes.
  await writeFile(
    join(dir, 'milkywaysrvd.service'),
    unit.replaceAll('/usr/local/bin/milkywaysrvd', '/bin/true'),
  );
  // Documentation=man:milkywaysrvd(1) is checked too: the page scripts/install-docs.sh installs.
  await execa(join(ROOT, 'scripts/install-docs.sh'), [], { env: { MWAY_DOC_PREFIX: dir }, timeout: 120_000 });
  const r = await execa('systemd-analyze', ['verify', join(dir, 'milkywaysrvd.service')], {
    reject: false,
    timeout: 60_000,
    env: { MANPATH: join(dir, 'share/man') },
  });
  const complaints = String(r.stderr)
    .split('\n')
    .filter((l) => l !== '');
  t.deepEqual(complaints, []);
});
