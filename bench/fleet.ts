// `npm run bench -- fleet [--peers=N] [--procs=P] [--rounds=R] [--quick] [--profile=DIR]`: one broker
// (milkywaysrvd, its own process) and N protocol-complete simulated peers (bench/_fleet-peer.ts,
// several per process) on 127.0.0.1. The operator signs a `status` command to all of them;
// we time how long until every signed result is back at the operator and verified there, one
// by one as they arrive, as `mway` does (p50/p99 over rounds, and per-peer latency), the
// broker's RSS and CPU per command. The simulated peers are other processes: their CPU is
// counted apart, never as the broker's. Two references from the same
// run: the fan-out latency against the same number of plain node:tls round trips (the same
// connections, certificates, process layout and message sizes, no broker, no signatures:
// bench/_tls-echo.ts), with that server's CPU as the transport's share of the broker's; and the
// per-peer CPU against the CPU time of one ML-DSA-65 verify. `--profile=DIR`
// writes V8 CPU profiles (`node --cpu-prof`) of the broker and each peer process to DIR; they
// are then stopped with SIGTERM (a profile is written at exit, never on SIGKILL).
//
// `--transport nats`: the same fan-out twice in one run, first over the TLS broker as above, then
// in NATS mode (doc/nats.md): a 3-node nats-server cluster (bench/_nats-cluster.ts, R3 streams)
// started here, milkywaysrvd with `nats` in its config, and the same simulated peers each on its
// own NATS connection reading its mailbox and the group subject. Before the rounds the operator
// puts every peer in the group (signed memberships, each acked by the peer with a signed ack), so
// the broker stores each round's command once on the group subject. Printed side by side: p50/p99,
// the broker's and the NATS servers' CPU per peer per command, and their memory. No plain TLS
// reference in this mode (the comparison is the broker transport).
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCommand, envelopeDigest } from '../control/wire/command.ts';
import { verifyResult } from '../control/wire/result.ts';
import { type BrokerClient, connectBroker } from '../control/wire/transport.ts';
import { generateSigningKey, sign, verify } from '../keys/algorithms.ts';
import { signMembership } from '../control/wire/membership.ts';
import { flagValue, intFlag } from './_flags.ts';
import { cpuSeconds, cpuTimes, cpuUsOf, percentile } from './_measure.ts';
import { type BenchCluster, natsCluster, streamState } from './_nats-cluster.ts';
import {
  type Certificate,
  type Envelope,
  newIdentity,
  readCertificates,
  readPrivateKey,
  tlsContextOptions,
} from '../keys/index.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLEET = 'bench';
const GROUP = 'bench';

async function memKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)?.[1] ?? Number.NaN);
}

/** Peer identities are slow to make (a KEM key and a certificate each): kept in .cache. */
export async function fleetPki(n: number) {
  const dir = join(ROOT, '.cache', 'bench-fleet', 'pki');
  await mkdir(dir, { recursive: true });
  const have = async (name: string) => existsSync(join(dir, `${name}.crt`));
  if (!(await have('root'))) await newIdentity({ role: 'user-root', name: 'root', outDir: dir, days: 3650 });
  const rootChain = await readCertificates(join(dir, 'root.crt'));
  const under = {
    outDir: dir,
    issuerKey: await readPrivateKey(join(dir, 'root.key')),
    issuerCert: rootChain[0] as Certificate,
    days: 3650,
  };
  if (!(await have('broker')))
    await newIdentity({ ...under, role: 'broker', name: 'broker', dnsNames: ['localhost'] });
  // May run `status` and manage the bench group's memberships (NATS mode puts every peer in it).
  if (!(await have('operator'))) {
    await newIdentity({
      ...under,
      role: 'operator',
      name: 'operator',
      groups: [GROUP],
      actions: ['status', 'group'],
    });
  }
  const peers: Array<{ peerId: string; keyPath: string; certPath: string }> = [];
  for (let i = 1; i <= n; i++) {
    const name = `p${i}`;
    if (!(await have(name))) await newIdentity({ ...under, role: 'peer', name, peerId: `peer-${i}` });
    peers.push({
      peerId: `peer-${i}`,
      keyPath: join(dir, `${name}.key`),
      certPath: join(dir, `${name}.crt`),
    });
  }
  return { dir, peers };
}

type Transport = 'tls' | 'nats';

/** One transport's fan-out: what the rounds measured (times in ms, CPU in s, memory in KiB). */
interface FanOut {
  transport: Transport;
  connectS: number;
  /** NATS mode: putting every peer in the group until the broker holds each signed ack. */
  setupS?: number;
  roundMs: number[];
  arrivedMs: number[];
  peerMs: number[];
  verifyUs: number[];
  brokerUser: number;
  brokerSys: number;
  peerCpu: number;
  rssIdle: number;
  rssConnected: number;
  rssEnd: number;
  hwm: number;
  /** NATS mode: the three nats-servers' CPU over the rounds and their RSS (sum) connected / end / peaks. */
  servers?: {
    cpu: number;
    rssConnected: number;
    rssEnd: number;
    hwm: number;
    /** MWAY_CMD at the end: the memberships and each round's command (once, on the group subject). */
    commands: { messages: number; bytes: number };
  };
  commandBytes: number;
  resultBytes: number;
}

export async function run(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const n = intFlag(argv, 'peers', quick ? 100 : 1000);
  const procs = intFlag(argv, 'procs', quick ? 2 : 4);
  const rounds = intFlag(argv, 'rounds', quick ? 5 : 20);
  const transport = flagValue(argv, 'transport') ?? 'tls';
  if (transport !== 'tls' && transport !== 'nats')
    throw new Error(`--transport must be tls or nats, got ${transport}`);
  const profileDir = flagValue(argv, 'profile');
  const t0 = performance.now();
  const pki = await fleetPki(n);
  process.stdout.write(
    `identities ready (${n} peers) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  const loadStart = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  const common = { pki, n, procs, rounds, profileDir };
  const tlsRun = await fanOut({ ...common, transport: 'tls' });
  if (transport === 'nats') {
    const natsRun = await fanOut({ ...common, transport: 'nats' });
    printComparison(n, procs, rounds, tlsRun, natsRun);
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    process.stdout.write(`load average at the start: ${loadStart}; at the end: ${load}\n`);
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'mway-bench-fleet-ref-'));
  const kills: Array<() => void> = [];
  try {
    const tls = await tlsReference({
      pki,
      procs,
      rounds,
      work,
      commandBytes: tlsRun.commandBytes,
      resultBytes: tlsRun.resultBytes,
      kills,
    });
    printTls(n, procs, rounds, tlsRun, tls);
  } finally {
    for (const k of kills) k();
    await rm(work, { recursive: true, force: true });
  }
}

/** One ML-DSA-65 verify (node:crypto) of a 1 KiB message in CPU µs, the reference for per-peer costs. */
function verifyOneUs(): number {
  // CPU time like the figures it is compared with (wall time on a loaded machine counts other work).
  const key = generateSigningKey('ml-dsa-65');
  const msg = new Uint8Array(1024).fill(1);
  const sig = sign(key, msg, 'milkyway/v1/result');
  const vn = 2000;
  return (
    cpuUsOf(() => {
      for (let i = 0; i < vn; i++) verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/result');
    }) / vn
  );
}

const ms = (xs: number[], p: number) => percentile(xs, p).toFixed(0);
const mib = (kib: number) => (kib / 1024).toFixed(0);

function printTls(
  n: number,
  procs: number,
  rounds: number,
  f: FanOut,
  tls: { times: number[]; cpuUsPerPeer: number },
): void {
  const tlsMs = tls.times;
  const oneUs = verifyOneUs();
  const brokerCpu = f.brokerUser + f.brokerSys;
  const brokerPerPeerUs = (brokerCpu * 1e6) / (rounds * n);
  const peerPerPeerUs = (f.peerCpu * 1e6) / (rounds * n);
  // The bench's operator is one process for every round: the first round parses and checks
  // each peer's certificate as a fresh `mway` does on every command; later ones find them cached.
  const opVerifyColdUs = f.verifyUs[0] as number;
  const opVerifyWarmUs =
    rounds > 1 ? f.verifyUs.slice(1).reduce((a, b) => a + b, 0) / (rounds - 1) : Number.NaN;
  const rows = [
    ['peers / peer processes / rounds', `${n} / ${procs} / ${rounds}`],
    ['connect all peers (TLS 1.3, ML-DSA certs, X25519MLKEM768)', `${f.connectS.toFixed(1)} s`],
    ['signed status to all, every signed result verified by the operator: p50', `${ms(f.roundMs, 50)} ms`],
    ['… p99 (over rounds)', `${ms(f.roundMs, 99)} ms`],
    [
      'last result at the operator (before its verification) p50 / p99',
      `${ms(f.arrivedMs, 50)} / ${ms(f.arrivedMs, 99)} ms`,
    ],
    ['per-peer result verified p50 / p99', `${ms(f.peerMs, 50)} / ${ms(f.peerMs, 99)} ms`],
    ['broker CPU per command (all peers)', `${((brokerCpu * 1000) / rounds).toFixed(0)} ms`],
    [
      'broker CPU per peer per command (user + sys)',
      `${brokerPerPeerUs.toFixed(0)} µs (${((f.brokerUser * 1e6) / (rounds * n)).toFixed(0)} + ${((f.brokerSys * 1e6) / (rounds * n)).toFixed(0)})`,
    ],
    [
      'reference: the plain TLS server CPU per peer per round (same fan-out, no broker)',
      `${tls.cpuUsPerPeer.toFixed(0)} µs`,
    ],
    ['peer CPU per command (check + sign + TLS)', `${peerPerPeerUs.toFixed(0)} µs`],
    [
      'operator verify CPU per result: first round (as a fresh mway) / later rounds',
      `${opVerifyColdUs.toFixed(0)} / ${opVerifyWarmUs.toFixed(0)} µs`,
    ],
    [
      'broker RSS idle / connected / end (peak)',
      `${mib(f.rssIdle)} / ${mib(f.rssConnected)} / ${mib(f.rssEnd)} (${mib(f.hwm)}) MiB`,
    ],
    [
      `reference: the same ${n} plain node:tls round trips (${f.commandBytes} B out, ${f.resultBytes} B back): p50`,
      `${ms(tlsMs, 50)} ms`,
    ],
    ['… p99 (over rounds)', `${ms(tlsMs, 99)} ms`],
    [
      'ratio fan-out p50 / plain TLS p50',
      `${(percentile(f.roundMs, 50) / percentile(tlsMs, 50)).toFixed(1)}×`,
    ],
    [
      'ratio fan-out p99 / plain TLS p99',
      `${(percentile(f.roundMs, 99) / percentile(tlsMs, 99)).toFixed(1)}×`,
    ],
    ['reference: one ML-DSA-65 verify (node:crypto, CPU time)', `${oneUs.toFixed(0)} µs`],
    ['ratio broker per-peer cost / one verify', `${(brokerPerPeerUs / oneUs).toFixed(2)}×`],
    ['ratio peer per-command cost / one verify', `${(peerPerPeerUs / oneUs).toFixed(2)}×`],
  ];
  process.stdout.write(
    `| figure | value |\n|---|---|\n${rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}\n`,
  );
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`load average at the end: ${load}\n`);
}

function printComparison(n: number, procs: number, rounds: number, a: FanOut, b: FanOut): void {
  const oneUs = verifyOneUs();
  const perPeer = (cpuS: number) => `${((cpuS * 1e6) / (rounds * n)).toFixed(0)} µs`;
  const s = b.servers as NonNullable<FanOut['servers']>;
  const rows: Array<[string, string, string]> = [
    ['peers / peer processes / rounds', `${n} / ${procs} / ${rounds}`, `${n} / ${procs} / ${rounds}`],
    ['connect all peers', `${a.connectS.toFixed(1)} s`, `${b.connectS.toFixed(1)} s`],
    ['every peer in the group, each signed ack held by the broker', '—', `${(b.setupS ?? 0).toFixed(1)} s`],
    [
      'signed status to all, every signed result verified by the operator: p50 / p99',
      `${ms(a.roundMs, 50)} / ${ms(a.roundMs, 99)} ms`,
      `${ms(b.roundMs, 50)} / ${ms(b.roundMs, 99)} ms`,
    ],
    [
      'per-peer result verified p50 / p99',
      `${ms(a.peerMs, 50)} / ${ms(a.peerMs, 99)} ms`,
      `${ms(b.peerMs, 50)} / ${ms(b.peerMs, 99)} ms`,
    ],
    [
      'broker CPU per peer per command',
      perPeer(a.brokerUser + a.brokerSys),
      perPeer(b.brokerUser + b.brokerSys),
    ],
    ['NATS servers CPU per peer per command (3 nodes)', '—', perPeer(s.cpu)],
    [
      'servers together per peer per command',
      perPeer(a.brokerUser + a.brokerSys),
      perPeer(b.brokerUser + b.brokerSys + s.cpu),
    ],
    ['simulated peers CPU per command', perPeer(a.peerCpu), perPeer(b.peerCpu)],
    [
      'broker RSS connected / end (peak)',
      `${mib(a.rssConnected)} / ${mib(a.rssEnd)} (${mib(a.hwm)}) MiB`,
      `${mib(b.rssConnected)} / ${mib(b.rssEnd)} (${mib(b.hwm)}) MiB`,
    ],
    [
      'NATS cluster RSS (3 nodes) connected / end (peaks)',
      '—',
      `${mib(s.rssConnected)} / ${mib(s.rssEnd)} (${mib(s.hwm)}) MiB`,
    ],
    [
      'MWAY_CMD at the end (memberships + commands)',
      '—',
      `${s.commands.messages} messages, ${mib(s.commands.bytes / 1024)} MiB (${n} + ${rounds} if each round was stored once)`,
    ],
    [
      'command / result size',
      `${a.commandBytes} / ${a.resultBytes} B`,
      `${b.commandBytes} / ${b.resultBytes} B`,
    ],
  ];
  process.stdout.write(
    `| figure | TLS broker | NATS (3 nodes, R3) |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`,
  );
  process.stdout.write(
    `ratio NATS / TLS broker: p50 ${(percentile(b.roundMs, 50) / percentile(a.roundMs, 50)).toFixed(2)}×, p99 ${(percentile(b.roundMs, 99) / percentile(a.roundMs, 99)).toFixed(2)}×; one ML-DSA-65 verify ${oneUs.toFixed(0)} µs (CPU)\n`,
  );
}

async function fanOut(o: {
  pki: Awaited<ReturnType<typeof fleetPki>>;
  n: number;
  procs: number;
  rounds: number;
  profileDir: string | undefined;
  transport: Transport;
}): Promise<FanOut> {
  const { pki, n, procs, rounds, profileDir } = o;
  const nodeFlags = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const nats = o.transport === 'nats';
  const work = await mkdtemp(join(tmpdir(), 'mway-bench-fleet-'));
  // Each simulated peer fsyncs its replay cache before acting, as a real agent does on its own
  // disk; a thousand of them sharing this machine's one disk would measure that disk, not the
  // fleet. Their state goes to tmpfs (per-machine disk latency is reported by the agent bench).
  const peerState = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mway-bench-peers-'));
  const kills: Array<() => void> = [];
  let cluster: BenchCluster | undefined;
  try {
    // The streams hold every round's results and the memberships, twice (MWAY_AUDIT copies both).
    if (nats) cluster = await natsCluster(join(work, 'nats'), { maxFile: '16GB' });
    const config = join(work, 'broker.json');
    await writeFile(
      config,
      JSON.stringify({
        listen: '127.0.0.1:0',
        key: join(pki.dir, 'broker.key'),
        certificate: join(pki.dir, 'broker.crt'),
        anchors: [join(pki.dir, 'root.crt')],
        database: join(work, 'broker.db'),
        mdns: { enabled: false },
        ...(cluster === undefined ? {} : { nats: { servers: cluster.urls } }),
      }),
    );
    // Long-running children with streamed output and IPC: common/exec run() waits for exit,
    // so these use execa directly, with a timeout and a kill in `finally`.
    const broker = execa(
      process.execPath,
      [...nodeFlags, join(ROOT, 'control/broker/bin/milkywaysrvd.ts'), '--config', config, '--json'],
      {
        timeout: 3_600_000,
        reject: false,
        buffer: false,
      },
    );
    kills.push(() => broker.kill('SIGKILL'));
    const stops: Array<Promise<unknown>> = [];
    const stop = (child: { kill(signal: NodeJS.Signals): boolean } & PromiseLike<unknown>): void => {
      if (profileDir === undefined) child.kill('SIGKILL');
      else {
        child.kill('SIGTERM');
        stops.push(Promise.resolve(child));
      }
    };
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      broker.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
      });
      void broker.then((r) => reject(new Error(`milkywaysrvd exited: ${String(r.stderr ?? r.exitCode)}`)));
    });
    const address = (JSON.parse(line) as { result: { listening: string } }).result.listening;
    const brokerPid = broker.pid as number;
    const rssIdle = await memKiB(brokerPid, 'VmRSS');

    const t1 = performance.now();
    const per = Math.ceil(n / procs);
    const peerPids: number[] = [];
    const peerChildren: Array<{ kill(signal: NodeJS.Signals): boolean } & PromiseLike<unknown>> = [];
    await Promise.all(
      Array.from({ length: procs }, async (_, k) => {
        const slice = pki.peers.slice(k * per, (k + 1) * per);
        if (slice.length === 0) return;
        const jobFile = join(work, `peers-${k}.json`);
        await writeFile(
          jobFile,
          JSON.stringify({
            address,
            anchorsPath: join(pki.dir, 'root.crt'),
            operatorCertPath: join(pki.dir, 'operator.crt'),
            stateDir: peerState,
            fleet: FLEET,
            group: GROUP,
            peers: slice,
            ...(cluster === undefined ? {} : { nats: { servers: cluster.urls } }),
          }),
        );
        const child = execa(process.execPath, [...nodeFlags, join(ROOT, 'bench/_fleet-peer.ts'), jobFile], {
          timeout: 3_600_000,
          reject: false,
          buffer: false,
          stderr: 'inherit',
        });
        kills.push(() => child.kill('SIGKILL'));
        peerChildren.push(child);
        peerPids.push(child.pid as number);
        await new Promise<void>((resolve, reject) => {
          let buf = '';
          child.stdout?.on('data', (d: Buffer) => {
            buf += d.toString();
            if (buf.includes('ready ')) resolve();
          });
          void child.then((r) => reject(new Error(`peer process exited ${String(r.exitCode)}`)));
        });
      }),
    );
    const connectS = (performance.now() - t1) / 1000;
    process.stdout.write(
      `${o.transport}: ${n} peers in ${procs} processes connected in ${connectS.toFixed(1)} s\n`,
    );

    const anchors = await readCertificates(join(pki.dir, 'root.crt'));
    const opKey = await readPrivateKey(join(pki.dir, 'operator.key'));
    const opChain = await readCertificates(join(pki.dir, 'operator.crt'));
    const events: Array<{ result: Envelope; at: number }> = [];
    let acked = 0;
    let opClosed: Error | undefined;
    let wake: () => void = () => {};
    const op: BrokerClient = await connectBroker({
      address,
      role: 'operator',
      tls: tlsContextOptions({
        keyPath: join(pki.dir, 'operator.key'),
        certPath: join(pki.dir, 'operator.crt'),
        anchors,
      }),
      onMessage: (m) => {
        if (m.kind === 'job-event' && m.result !== undefined) {
          events.push({ result: m.result as Envelope, at: performance.now() });
          wake();
        }
        if (m.kind === 'membership-event' && m.ok === true) acked++;
      },
      // A round waits for results: without this a dropped operator connection looked like a
      // stalled round until the round limit (the 10,000-peer run before WATCH_HIGH_WATER).
      onClose: (reason) => {
        opClosed = reason ?? new Error('closed by the broker');
        wake();
      },
    });
    const ids = pki.peers.map((p) => p.peerId);
    let setupS: number | undefined;
    if (nats) setupS = await putInGroup(op, pki.peers, opKey, opChain, () => acked);
    const rssConnected = await memKiB(brokerPid, 'VmRSS');
    const serverMem = async (field: 'VmRSS' | 'VmHWM') =>
      (await Promise.all((cluster?.pids ?? []).map((pid) => memKiB(pid, field)))).reduce((x, y) => x + y, 0);
    const serversRssConnected = await serverMem('VmRSS');
    const serversCpu = async () =>
      (await Promise.all((cluster?.pids ?? []).map(cpuSeconds))).reduce((x, y) => x + y, 0);
    let commandBytes = 0;
    let resultBytes = 0;
    const roundMs: number[] = [];
    const arrivedMs: number[] = [];
    const peerMs: number[] = [];
    const verifyUs: number[] = [];
    const cpu0 = await cpuTimes(brokerPid);
    const serversCpu0 = await serversCpu();
    const peerCpu0 = await Promise.all(peerPids.map(cpuSeconds));
    for (let r = 0; r < rounds; r++) {
      const env = buildCommand({
        action: 'status',
        audience: { fleet: FLEET, target: `group:${GROUP}`, groups: [GROUP], peers: ids },
        seq: r + 1,
        key: opKey,
        chain: opChain,
        ttlMs: 120_000,
      });
      const jobId = (env.payload as { id: string }).id;
      const digest = envelopeDigest(env);
      commandBytes = JSON.stringify(env).length;
      events.length = 0;
      const start = performance.now();
      await op.request(
        'command-submit',
        {
          jobId,
          command: env,
          targets: ids,
          expiresAt: (env.payload as { expiresAt: string }).expiresAt,
          watch: true,
        },
        Math.max(60_000, 30 * n),
      );
      // What `mway` does with each result as it arrives: verify the peer's signature, its chain
      // and its binding to this command.
      let verified = 0;
      let verifyCpu = 0;
      // 120 s, or 30 ms a peer for large fleets (10,000 peers: 300 s).
      const roundLimitMs = Math.max(120_000, 30 * n);
      const deadline = start + roundLimitMs;
      while (verified < n && performance.now() < deadline) {
        if (opClosed !== undefined && verified === events.length)
          throw new Error(`round ${r + 1}: the operator's broker connection closed: ${opClosed.message}`);
        if (verified === events.length) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 1000);
          });
          continue;
        }
        verifyCpu += cpuUsOf(() => {
          for (; verified < events.length; verified++) {
            const e = events[verified] as (typeof events)[number];
            verifyResult(e.result, { anchors, crls: [], expect: { command: jobId, commandDigest: digest } });
            peerMs.push(performance.now() - start);
          }
        });
      }
      roundMs.push(performance.now() - start);
      if (verified < n)
        throw new Error(`round ${r + 1}: only ${verified} of ${n} results in ${roundLimitMs / 1000} s`);
      arrivedMs.push((events[n - 1] as (typeof events)[number]).at - start);
      verifyUs.push(verifyCpu / n);
      resultBytes = JSON.stringify(events[0]?.result ?? {}).length;
    }
    const cpu1 = await cpuTimes(brokerPid);
    const serversCpuUsed = (await serversCpu()) - serversCpu0;
    const brokerUser = cpu1.user - cpu0.user;
    const brokerSys = cpu1.sys - cpu0.sys;
    const peerCpu =
      (await Promise.all(peerPids.map(cpuSeconds))).reduce((a, b) => a + b, 0) -
      peerCpu0.reduce((a, b) => a + b, 0);
    const rssEnd = await memKiB(brokerPid, 'VmRSS');
    const hwm = await memKiB(brokerPid, 'VmHWM');
    const servers =
      cluster === undefined
        ? undefined
        : {
            cpu: serversCpuUsed,
            rssConnected: serversRssConnected,
            rssEnd: await serverMem('VmRSS'),
            hwm: await serverMem('VmHWM'),
            commands: await streamState(cluster, 'MWAY_CMD'),
          };
    op.close();
    // The broker and the simulated peers go before the next run, so it has the machine.
    for (const c of [broker, ...peerChildren]) stop(c);
    await Promise.all(stops);
    for (const k of kills.splice(0)) k();
    return {
      transport: o.transport,
      connectS,
      ...(setupS === undefined ? {} : { setupS }),
      roundMs: roundMs.sort((x, y) => x - y),
      arrivedMs: arrivedMs.sort((x, y) => x - y),
      peerMs: peerMs.sort((x, y) => x - y),
      verifyUs,
      brokerUser,
      brokerSys,
      peerCpu,
      rssIdle,
      rssConnected,
      rssEnd,
      hwm,
      ...(servers === undefined ? {} : { servers }),
      commandBytes,
      resultBytes,
    };
  } finally {
    for (const k of kills) k();
    await cluster?.stop();
    await rm(work, { recursive: true, force: true });
    await rm(peerState, { recursive: true, force: true });
  }
}

/**
 * NATS mode's setup: the operator signs each peer's membership of the bench group and puts it
 * (milkywaysrvd stores it in the peer's mailbox); done when the broker holds every peer's signed
 * ack, from then on a job to the group is stored once on its subject. A peer the broker has not
 * heard a status from yet is E_PEER_UNKNOWN: asked again shortly.
 */
async function putInGroup(
  op: BrokerClient,
  peers: Array<{ peerId: string }>,
  key: Awaited<ReturnType<typeof readPrivateKey>>,
  chain: Certificate[],
  acked: () => number,
): Promise<number> {
  const t0 = performance.now();
  await op.request('group-create', { group: GROUP }, 60_000);
  const deadline = t0 + Math.max(300_000, 60 * peers.length);
  const put = async (peerId: string): Promise<void> => {
    const membership = signMembership({ fleet: FLEET, group: GROUP, peer: peerId, member: true, key, chain });
    for (;;) {
      try {
        await op.request('membership-put', { group: GROUP, peerId, membership, watch: true }, 60_000);
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== 'E_PEER_UNKNOWN' || performance.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  for (let i = 0; i < peers.length; i += 100)
    await Promise.all(peers.slice(i, i + 100).map((p) => put(p.peerId)));
  while (acked() < peers.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (acked() < peers.length)
    throw new Error(`NATS setup: ${acked()} of ${peers.length} peers acked their membership in time`);
  const s = (performance.now() - t0) / 1000;
  process.stdout.write(
    `nats: ${peers.length} peers in group ${GROUP}, every signed ack held, in ${s.toFixed(1)} s\n`,
  );
  return s;
}

/**
 * The same fan-out without MilkyWay: a node:tls server here (the broker's certificate, client
 * certificates required) and the peers' connections from `procs` processes of bench/_tls-echo.ts;
 * each round writes a command-sized line to every connection and waits for every reply of a
 * result's size. Returns the round times in ms and the server's CPU per connection per round.
 */
async function tlsReference(o: {
  pki: Awaited<ReturnType<typeof fleetPki>>;
  procs: number;
  rounds: number;
  work: string;
  commandBytes: number;
  resultBytes: number;
  kills: Array<() => void>;
}): Promise<{ times: number[]; cpuUsPerPeer: number }> {
  const anchors = await readCertificates(join(o.pki.dir, 'root.crt'));
  const sockets: TLSSocket[] = [];
  let replies = 0;
  let wake: () => void = () => {};
  const server = createServer(
    {
      ...tlsContextOptions({
        keyPath: join(o.pki.dir, 'broker.key'),
        certPath: join(o.pki.dir, 'broker.crt'),
        anchors,
      }),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s) => {
      sockets.push(s);
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        for (let i = d.indexOf('\n'); i >= 0; i = d.indexOf('\n', i + 1)) replies++;
        wake();
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const n = o.pki.peers.length;
    const per = Math.ceil(n / o.procs);
    await Promise.all(
      Array.from({ length: o.procs }, async (_, k) => {
        const slice = o.pki.peers.slice(k * per, (k + 1) * per);
        if (slice.length === 0) return;
        const jobFile = join(o.work, `echo-${k}.json`);
        await writeFile(
          jobFile,
          JSON.stringify({
            port,
            anchorsPath: join(o.pki.dir, 'root.crt'),
            replyBytes: o.resultBytes,
            peers: slice,
          }),
        );
        const child = execa(process.execPath, [join(ROOT, 'bench/_tls-echo.ts'), jobFile], {
          timeout: 3_600_000,
          reject: false,
          buffer: false,
          stderr: 'inherit',
        });
        o.kills.push(() => child.kill('SIGKILL'));
        await new Promise<void>((resolve, reject) => {
          let buf = '';
          child.stdout?.on('data', (d: Buffer) => {
            buf += d.toString();
            if (buf.includes('ready ')) resolve();
          });
          void child.then((r) => reject(new Error(`echo process exited ${String(r.exitCode)}`)));
        });
      }),
    );
    // A client's handshake can finish before the server's side of it: wait for every socket.
    const until = performance.now() + 60_000;
    while (sockets.length < n && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (sockets.length < n) throw new Error(`TLS reference: ${sockets.length} of ${n} connections accepted`);
    const line = `${'c'.repeat(Math.max(1, o.commandBytes))}\n`;
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let r = 0; r < o.rounds; r++) {
      replies = 0;
      const start = performance.now();
      for (const s of sockets) s.write(line);
      const deadline = start + 120_000;
      while (replies < n && performance.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1000);
        });
      }
      if (replies < n) throw new Error(`TLS reference round ${r + 1}: ${replies} of ${n} replies in 120 s`);
      times.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpu0);
    return { times: times.sort((a, b) => a - b), cpuUsPerPeer: (cpu.user + cpu.system) / (o.rounds * n) };
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
}
