/**
 * A tiny Prometheus HTTP API stand-in for the fast controller tier: it answers instant queries
 * (`GET /api/v1/query?query=`) on 127.0.0.1 with the JSON shape Prometheus answers
 * (https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries:
 * `{status:"success",data:{resultType:"vector",result:[{metric:{},value:[<unix s>,"<number>"]}]}}`),
 * so the controllers' real Prometheus client (src/controllers/shared/analysis/prometheus.ts) is
 * exercised over HTTP. What a query measures is the test's function of the rendered query; `down()`
 * closes the port (connection refused: Prometheus unreachable), `up()` opens it again on the same
 * port. The integration tier uses a real Prometheus (test/harness/prometheus.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The value a query measures: a number, `null` for an empty vector, or an HTTP status to fail with. */
export type FakeAnswer = number | null | { httpStatus: number };

export class FakePrometheus {
  private server?: Server;
  private port = 0;
  /** Every query received (rendered PromQL), in order. */
  readonly queries: string[] = [];

  constructor(private readonly answer: (query: string) => FakeAnswer) {}

  /** The base URL for `spec.analysis.prometheus.url`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts listening (on the previous port after a `down()`). */
  async up(): Promise<void> {
    const server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname !== '/api/v1/query') {
        res.writeHead(404).end();
        return;
      }
      const query = u.searchParams.get('query') ?? '';
      this.queries.push(query);
      const a = this.answer(query);
      if (a !== null && typeof a === 'object') {
        res.writeHead(a.httpStatus, { 'content-type': 'text/plain' }).end('upstream error');
        return;
      }
      const result = a === null ? [] : [{ metric: {}, value: [Date.now() / 1000, String(a)] }];
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Closes the port: queries fail with connection refused until `up()`. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The instance IDs of a `instance_id=~"i-a|i-b"` matcher in `query` (the `{{instanceIdsRegex}}` form). */
export function matchedInstanceIds(query: string): string[] {
  const m = /instance_id=~"([^"]*)"/.exec(query);
  return m?.[1] ? m[1].split('|') : [];
}
