/**
 * HTTP endpoints of the daemon: `/metrics` on the metrics bind address (controller-runtime
 * `--metrics-bind-address`, default `:8080`) and `/healthz`, `/readyz` on the health-probe bind
 * address (`--health-probe-bind-address`, default `:8081`), using node:http.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Health checks served on the probe address. */
export interface ProbeChecks {
  /** Liveness: the process is alive and its loops are running. Throwing counts as failure. */
  healthz: () => boolean | Promise<boolean>;
  /**
   * Readiness (informers synced, credentials resolvable); `detail` is a short, credential-free
   * text. Not ready (or throwing) answers 503.
   */
  readyz: () => Promise<{ ok: boolean; detail?: string }>;
}

/** Options of {@link startProbeServer}. */
export interface ProbeServerOptions {
  /** `host:port`, `:port` (all interfaces) or `0` to disable; port 0 picks a free port. */
  metricsAddr: string;
  /** Same format as `metricsAddr`; the same address as metrics serves both on one listener. */
  probeAddr: string;
  registry: Registry;
  checks: ProbeChecks;
}

/** The running servers: bound ports (0 when disabled) and `close()`. */
export interface ProbeServer {
  metricsPort: number;
  probePort: number;
  close(): Promise<void>;
}

/**
 * Parses a Go-style bind address: `:8080` → all interfaces, `127.0.0.1:0`, `[::1]:8080`.
 * Returns undefined for `0` (disabled, controller-runtime convention). Throws on a malformed port.
 */
export function parseBindAddress(addr: string): { host: string | undefined; port: number } | undefined {
  if (addr === '0') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid bind address ${JSON.stringify(addr)}: want host:port or :port`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid bind address ${JSON.stringify(addr)}: port out of range`);
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

function metricsHandler(registry: Registry): Handler {
  return async (_req, res) => {
    try {
      send(res, 200, registry.contentType, await registry.metrics());
    } catch {
      send(res, 500, 'text/plain; charset=utf-8', 'error collecting metrics\n');
    }
  };
}

function probeHandlers(checks: ProbeChecks): Record<string, Handler> {
  return {
    '/healthz': async (_req, res) => {
      let ok: boolean;
      try {
        ok = await checks.healthz();
      } catch {
        ok = false;
      }
      send(res, ok ? 200 : 500, 'text/plain; charset=utf-8', ok ? 'ok\n' : 'unhealthy\n');
    },
    '/readyz': async (_req, res) => {
      let result: { ok: boolean; detail?: string };
      try {
        result = await checks.readyz();
      } catch {
        result = { ok: false, detail: 'readiness check failed' };
      }
      const text = result.ok ? 'ok' : `not ready${result.detail ? `: ${result.detail}` : ''}`;
      // 503: the Kubernetes convention for "alive but not ready" (kube-apiserver, README).
      send(res, result.ok ? 200 : 503, 'text/plain; charset=utf-8', `${text}\n`);
    },
  };
}

function listen(
  routes: Record<string, Handler>,
  addr: { host: string | undefined; port: number },
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = routes[path];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (!handler) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    void handler(req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the metrics and probe listeners. Resolves once both are bound; rejects with the listen
 * error (e.g. `EADDRINUSE`) otherwise, closing whatever was opened. Unknown paths answer 404,
 * non-GET methods 405. `/healthz` answers 200, or 500 when its check fails or throws; `/readyz`
 * answers 200, or 503 Service Unavailable (body `not ready: <detail>`) when its check reports
 * not ready or throws.
 */
export async function startProbeServer(opts: ProbeServerOptions): Promise<ProbeServer> {
  const metricsAddr = parseBindAddress(opts.metricsAddr);
  const probeAddr = parseBindAddress(opts.probeAddr);
  const servers: Server[] = [];
  const portOf = (s: Server): number => (s.address() as AddressInfo).port;
  try {
    let metricsPort = 0;
    let probePort = 0;
    const shared = metricsAddr && probeAddr && opts.metricsAddr === opts.probeAddr && metricsAddr.port !== 0;
    if (shared) {
      const s = await listen(
        { '/metrics': metricsHandler(opts.registry), ...probeHandlers(opts.checks) },
        metricsAddr,
      );
      servers.push(s);
      metricsPort = probePort = portOf(s);
    } else {
      if (metricsAddr) {
        const s = await listen({ '/metrics': metricsHandler(opts.registry) }, metricsAddr);
        servers.push(s);
        metricsPort = portOf(s);
      }
      if (probeAddr) {
        const s = await listen(probeHandlers(opts.checks), probeAddr);
        servers.push(s);
        probePort = portOf(s);
      }
    }
    return {
      metricsPort,
      probePort,
      close: async () => {
        await Promise.all(servers.map(closeServer));
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
}
