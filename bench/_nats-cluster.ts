// A 3-node Debian nats-server cluster on 127.0.0.1 (free ports, the test fixture's configs) for
// the benchmarks that run NATS mode: started here, stopped with SIGTERM by `stop()`.
import { execa } from 'execa';
import { writeNatsConfs } from '../test/control/nats-fixture.ts';

export interface BenchCluster {
  urls: string[];
  pids: number[];
  /** The servers' monitoring ports. */
  http: number[];
  stop(): Promise<void>;
}

function startServer(conf: string): { pid: number; stop(): Promise<void> } {
  // Stopped by the benchmark at the end; the timeout only bounds a run that hangs.
  const proc = execa('nats-server', ['-c', conf], {
    timeout: 3_600_000,
    forceKillAfterDelay: 2000,
    reject: false,
  });
  const done = proc.then(
    () => undefined,
    () => undefined,
  );
  return {
    pid: proc.pid as number,
    stop: async () => {
      proc.kill('SIGTERM');
      await done;
    },
  };
}

/** Starts the cluster in `dir` and waits until every node names a JetStream meta leader. */
export async function natsCluster(dir: string, o: { maxFile: string }): Promise<BenchCluster> {
  const ports = await writeNatsConfs(dir, 3, { cluster: 'bench', maxFile: o.maxFile });
  const procs = ports.map((p) => startServer(p.conf));
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  for (let i = 0; ; i++) {
    const views = await Promise.all(
      ports.map((p) =>
        fetch(`http://127.0.0.1:${p.http}/jsz`, { signal: AbortSignal.timeout(1000) })
          .then((r) => r.json() as Promise<{ meta_cluster?: { leader?: string } }>)
          .catch(() => undefined),
      ),
    );
    if (views.every((v) => (v?.meta_cluster?.leader ?? '') !== '')) break;
    if (i > 150) {
      await stop();
      throw new Error('bench: the nats-server cluster did not form in 30 s (Debian package nats-server)');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    urls: ports.map((p) => `nats://127.0.0.1:${p.client}`),
    pids: procs.map((p) => p.pid),
    http: ports.map((p) => p.http),
    stop,
  };
}

/** A stream's messages and bytes as the servers' monitoring endpoint reports them (the most any node holds). */
export async function streamState(
  c: BenchCluster,
  name: string,
): Promise<{ messages: number; bytes: number }> {
  let best = { messages: 0, bytes: 0 };
  for (const port of c.http) {
    const r = (await fetch(`http://127.0.0.1:${port}/jsz?streams=true`, {
      signal: AbortSignal.timeout(5000),
    }).then((x) => x.json())) as {
      account_details?: Array<{
        stream_detail?: Array<{ name: string; state: { messages: number; bytes: number } }>;
      }>;
    };
    for (const a of r.account_details ?? [])
      for (const st of a.stream_detail ?? [])
        if (st.name === name && st.state.messages > best.messages) best = st.state;
  }
  return best;
}
