// A NATS JetStream cluster of real Debian nats-server processes on 127.0.0.1, for the NATS mode
// tests: each node on its own free ports (never the packaged service's 4222), its own store in
// the test's temporary directory, killed at teardown. Nodes can be killed (kill -9), stopped
// (SIGSTOP) and started again on the same ports and store.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ExecutionContext } from 'ava';
import { freePort, tempDir } from '../helpers.ts';

export interface NatsNode {
  name: string;
  url: string;
  httpPort: number;
  proc: ChildProcess | undefined;
}

export interface NatsCluster {
  nodes: NatsNode[];
  urls: string[];
  /** Where a leaf node (a site's server) connects to this cluster. */
  leafUrls: string[];
  /** Each node's route listener (as nodes). */
  routeUrls: string[];
  /** Each node's config file (as nodes). */
  confs: string[];
  /** The node that leads `stream` right now (from the servers' own /jsz). */
  streamLeader(stream: string): Promise<NatsNode>;
  kill(node: NatsNode, signal?: NodeJS.Signals): Promise<void>;
  start(node: NatsNode): Promise<void>;
  /** Waits until every running node sees a meta leader (the JetStream cluster formed). */
  ready(timeoutMs?: number): Promise<void>;
}

async function jsz(node: NatsNode, query = ''): Promise<Record<string, unknown> | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${node.httpPort}/jsz${query}`, {
      signal: AbortSignal.timeout(1000),
    });
    return (await r.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export interface NatsClusterOptions {
  /** nats-server's `authorization` block (control/broker/nats-users.ts), the same on every node. */
  authorization?: unknown;
  /** A config file every node includes (`milkywaysrvd nats-authorization --out`). */
  include?: string;
  /** The cluster's JetStream domain (a leaf node's clients name it; doc/nats.md). */
  domain?: string;
  /** A `tls { … }` block for the routes, inside `cluster {}` (doc/nats.md, "Route TLS"). */
  routeTls?: string;
}

/**
 * Writes one nats-server config per node of a `size`-node JetStream cluster into `dir` (each on
 * its own free ports, its store in `dir/<name>`); the tests here and bench/nats.ts start them.
 */
export async function writeNatsConfs(
  dir: string,
  size: number,
  o: NatsClusterOptions & { cluster: string; maxFile: string },
): Promise<{ name: string; conf: string; client: number; http: number; leaf: number; route: number }[]> {
  const ports = [];
  for (let i = 0; i < size; i++)
    ports.push({
      client: await freePort(),
      cluster: await freePort(),
      http: await freePort(),
      leaf: await freePort(),
    });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(', ');
  const out = [];
  for (const [i, p] of ports.entries()) {
    const name = `n${i + 1}`;
    await mkdir(join(dir, name), { recursive: true });
    const conf = join(dir, `${name}.conf`);
    await writeFile(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.http}`,
        `jetstream { ${o.domain === undefined ? '' : `domain: ${o.domain}, `}store_dir: "${join(dir, name)}", max_mem: 64MB, max_file: ${o.maxFile} }`,
        `cluster { name: ${o.cluster}, listen: 127.0.0.1:${p.cluster}, routes: [ ${routes} ]${o.routeTls === undefined ? '' : `, ${o.routeTls}`} }`,
        // A site's leaf node (startNatsLeaf) may connect here.
        `leafnodes { listen: 127.0.0.1:${p.leaf} }`,
        // nats-server's config format reads JSON.
        ...(o.authorization === undefined ? [] : [`authorization: ${JSON.stringify(o.authorization)}`]),
        // nats-server resolves an include against the including file's folder, absolute or not.
        ...(o.include === undefined ? [] : [`include "${relative(dir, o.include)}"`]),
        '',
      ].join('\n'),
    );
    out.push({ name, conf, client: p.client, http: p.http, leaf: p.leaf, route: p.cluster });
  }
  return out;
}

export async function startNatsCluster(
  t: ExecutionContext,
  size = 3,
  o: NatsClusterOptions = {},
): Promise<NatsCluster> {
  const dir = await tempDir(t);
  const written = await writeNatsConfs(dir, size, { ...o, cluster: 'mway-test', maxFile: '256MB' });
  const confs = written.map((w) => w.conf);
  const nodes: NatsNode[] = written.map((w) => ({
    name: w.name,
    url: `nats://127.0.0.1:${w.client}`,
    httpPort: w.http,
    proc: undefined,
  }));
  const start = async (node: NatsNode): Promise<void> => {
    const conf = confs[nodes.indexOf(node)] as string;
    const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const failed = await Promise.race([
      once(proc, 'error').then(([e]) => e as Error),
      once(proc, 'spawn').then(() => undefined),
    ]);
    if (failed !== undefined)
      throw new Error(
        `cannot start nats-server (Debian package nats-server, scripts/setup.sh): ${failed.message}`,
      );
    proc.on('exit', (code, sig) => {
      if (node.proc === proc && code !== null && code !== 0)
        t.log(`${node.name} exited ${code} ${sig}: ${stderr}`);
    });
    node.proc = proc;
  };
  const kill = async (node: NatsNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = node.proc;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = signal === 'SIGSTOP' || signal === 'SIGCONT' ? undefined : once(proc, 'exit');
    proc.kill(signal);
    if (exited !== undefined) {
      await exited;
      node.proc = undefined;
    }
  };
  t.teardown(async () => {
    for (const n of nodes) {
      n.proc?.kill('SIGCONT');
      await kill(n);
    }
  });
  for (const n of nodes) await start(n);
  const ready = async (timeoutMs = 30_000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const running = nodes.filter((n) => n.proc !== undefined);
      const views = await Promise.all(running.map((n) => jsz(n)));
      if (
        views.every((v) => {
          const meta = v?.meta_cluster as { leader?: string } | undefined;
          return typeof meta?.leader === 'string' && meta.leader !== '';
        })
      )
        return;
      if (Date.now() > end)
        throw new Error(`NATS cluster not formed in ${timeoutMs} ms: ${JSON.stringify(views)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await ready();
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    leafUrls: written.map((w) => `nats-leaf://127.0.0.1:${w.leaf}`),
    routeUrls: written.map((w) => `nats-route://127.0.0.1:${w.route}`),
    confs,
    ready,
    kill,
    start,
    async streamLeader(stream) {
      for (let i = 0; i < 100; i++) {
        for (const n of nodes.filter((x) => x.proc !== undefined)) {
          const v = await jsz(n, '?streams=true');
          const accounts = (v?.account_details ?? []) as Array<{
            stream_detail?: Array<{ name: string; cluster?: { leader?: string } }>;
          }>;
          for (const a of accounts)
            for (const s of a.stream_detail ?? []) {
              const leader = nodes.find((x) => x.name === s.cluster?.leader);
              if (s.name === stream && leader !== undefined) return leader;
            }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no leader of ${stream} found`);
    },
  };
}

export interface NatsLeaf {
  url: string;
  /** Stops the leaf (kill -9); start() runs it again on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Waits until the leaf's connection to the cluster is up (its own /leafz). */
  connected(timeoutMs?: number): Promise<void>;
}

/**
 * A site's server: a leaf node of `cluster` without JetStream of its own, so its clients'
 * JetStream requests reach the cluster's streams through the leaf connection (doc/nats.md, "A
 * leaf node for a site"). `conf` is that how-to's site config as written: its placeholders are
 * filled with this test's ports.
 */
export async function startNatsLeaf(
  t: ExecutionContext,
  cluster: NatsCluster,
  template: string,
): Promise<NatsLeaf> {
  const dir = await tempDir(t);
  const client = await freePort();
  const http = await freePort();
  const conf = join(dir, 'leaf.conf');
  let text = template
    .replaceAll('<client port>', String(client))
    .replaceAll('<monitoring port>', String(http));
  for (const [i, u] of cluster.leafUrls.entries())
    text = text.replaceAll(`nats-leaf://127.0.0.1:<n${i + 1} leaf port>`, u);
  if (/<[^>]*>/.test(text)) throw new Error(`leaf config has an unfilled placeholder: ${text}`);
  await writeFile(conf, text);
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const p = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
    const failed = await Promise.race([
      once(p, 'error').then(([e]) => e as Error),
      once(p, 'spawn').then(() => undefined),
    ]);
    if (failed !== undefined)
      throw new Error(
        `cannot start nats-server (Debian package nats-server, scripts/setup.sh): ${failed.message}`,
      );
    proc = p;
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    if (p === undefined || p.exitCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
    proc = undefined;
  };
  t.teardown(kill);
  const connected = async (timeoutMs = 30_000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fetch(`http://127.0.0.1:${http}/leafz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.json() as Promise<{ leafnodes?: number }>)
        .catch(() => undefined);
      if ((v?.leafnodes ?? 0) > 0) return;
      if (Date.now() > end) throw new Error(`leaf node not connected in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await start();
  await connected();
  return { url: `nats://127.0.0.1:${client}`, kill, start, connected };
}
