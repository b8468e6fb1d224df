/**
 * A TCP proxy on 127.0.0.1 in front of the test API server, so tests can cut the network
 * (pause) and restore it (resume) — a real connection failure, no mocking.
 */
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening (on the previous port after a pause). */
  async resume(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and destroys every open connection. */
  async pause(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A copy of `kc` whose current cluster points at this proxy. */
  kubeConfigFor(kc: KubeConfig): KubeConfig {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster');
    const out = new KubeConfig();
    out.loadFromOptions({
      clusters: kc
        .getClusters()
        .map((c) => (c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${this.port}` } : c)),
      users: kc.getUsers(),
      contexts: kc.getContexts(),
      currentContext: kc.getCurrentContext(),
    });
    return out;
  }

  static forKubeConfig(kc: KubeConfig): TcpProxy {
    const url = new URL(kc.getCurrentCluster()?.server ?? '');
    return new TcpProxy(url.hostname, Number(url.port || 443));
  }
}

/** Polls `fn` every 50 ms until it returns true, or throws after `timeoutMs` milliseconds. */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
