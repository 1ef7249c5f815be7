// The broker's health endpoint: `GET /healthz` on a listener of its own (the config's
// `health.listen`, loopback by default), as nats-server serves `/healthz` on its monitoring
// port. 200 and `{"status": "ok", …}` when every check passes, 503 and `"unavailable"` with the
// failing checks otherwise (and while the broker stops), so a probe needs only curl -f
// (doc/broker.md, "Health"). It answers nothing but that: no state is read beyond the checks,
// nothing is accepted, and no request can hold a connection open for long.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface HealthReport {
  /** `ok` when every check is `ok`. */
  status: 'ok' | 'unavailable';
  /** Each check's result: `ok`, or why it failed. */
  checks: Record<string, string>;
  [more: string]: unknown;
}

export interface HealthEndpoint {
  port: number;
  close(): Promise<void>;
}

/** A request that has not sent its headers (and had its answer) within this is cut off. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Probes are few; a flood of connections is refused rather than queued. */
const MAX_CONNECTIONS = 64;

function answer(res: ServerResponse, code: number, body: unknown, head: boolean, extra = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : text);
}

/** Listens on `host:port` (port 0: any free one) and answers `/healthz` with `report()`. */
export async function startHealthEndpoint(o: {
  host: string;
  port: number;
  report: () => HealthReport;
}): Promise<HealthEndpoint> {
  const server = createServer(
    {
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: 1_000,
      connectionsCheckingInterval: 1_000,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const head = req.method === 'HEAD';
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/healthz')
        return answer(res, 404, { error: 'not found: the endpoint is /healthz' }, head);
      if (req.method !== 'GET' && !head)
        return answer(res, 405, { error: 'method not allowed: use GET or HEAD' }, false, {
          allow: 'GET, HEAD',
        });
      let r: HealthReport;
      try {
        r = o.report();
      } catch (e) {
        r = { status: 'unavailable', checks: { report: (e as Error).message } };
      }
      answer(res, r.status === 'ok' ? 200 : 503, r, head);
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  // requestTimeout covers a request once it began; a connection that never sends a byte is
  // only cut by the socket's own idle timeout.
  server.setTimeout(REQUEST_TIMEOUT_MS, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : o.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
