/**
 * A steady-rate HTTP load generator for tests and benchmarks, on autocannon 9
 * (https://github.com/mcollina/autocannon#api): GET `path` at `rate` requests per second in total
 * (autocannon `overallRate`, spread over `connections` keep-alive connections; each connection is
 * closed and opened again every `reconnectEvery` requests, so a load balancer schedules new
 * connections while open ones stay pinned), until `maxRequests` answers, `maxDurationMs` or
 * `stop()`, whichever comes first — it always stops by itself.
 *
 * It counts every request that failed (an answer that is not 2xx, a connection error, a timeout)
 * and every answer by the version the demo app (deploy/examples/artifacts/web-*) names in its
 * body (`hello from web <version> on <instance>`; the `X-Web-Version` header when the body does
 * not say), per whole second since the start. Traffic goes only to `url` (the emulator's load
 * balancers listen on 127.0.0.1).
 */
import autocannon from 'autocannon';

/** Options of {@link startLoad}. */
export interface LoadOptions {
  /** Base URL, e.g. an emulated load balancer's `http://127.0.0.1:PORT`. */
  url: string;
  /** Request path; default `/`. */
  path?: string;
  /** Requests per second over all connections (autocannon `overallRate`). */
  rate: number;
  /** Keep-alive connections; default 8. */
  connections?: number;
  /** Requests per connection before it is closed and opened again (autocannon `reconnectRate`); default 20, 0 = never. */
  reconnectEvery?: number;
  /** Hard bound: stop after this many requests (answers + failures). */
  maxRequests: number;
  /** Hard bound: stop after this long, milliseconds. */
  maxDurationMs: number;
  /** Per-request timeout, seconds; default 5. */
  timeoutSeconds?: number;
}

/** Counts of one whole second of a load run (second `t` covers [t, t+1) s after the start). */
export interface LoadBucket {
  t: number;
  ok: number;
  failed: number;
  /** 2xx answers by the version the body names (`?` when none). */
  byVersion: Record<string, number>;
}

/** What a load run saw. */
export interface LoadResult {
  /** Requests that ended: answers plus connection errors and timeouts. */
  requests: number;
  ok: number;
  /** Non-2xx answers + errors + timeouts. */
  failed: number;
  /** Answers by HTTP status; transport failures under `error` / `timeout`. */
  byStatus: Record<string, number>;
  /** 2xx answers by version. */
  byVersion: Record<string, number>;
  /** Per-second counts, in order, every second present. */
  buckets: LoadBucket[];
  /** Wall time of the run, milliseconds. */
  elapsedMs: number;
  /** Epoch milliseconds of the start (bucket 0). */
  startedAtMs: number;
}

/** A load run in progress. */
export interface LoadRun {
  /** Counts so far (live object; `buckets` grows). */
  readonly result: LoadResult;
  /** Resolves when the run ended by a bound or by `stop()`. */
  readonly done: Promise<LoadResult>;
  /** Ends the run (requests in flight are dropped, not counted); resolves with the final counts. */
  stop(): Promise<LoadResult>;
  /** Seconds since the start (the bucket index of now). */
  second(): number;
}

const VERSION_RE = /from web (\S+) on/;

/** Starts sending load; see {@link LoadOptions} for the bounds. @throws Error on invalid options (autocannon's). */
export function startLoad(o: LoadOptions): LoadRun {
  const startedAtMs = Date.now();
  const result: LoadResult = {
    requests: 0,
    ok: 0,
    failed: 0,
    byStatus: {},
    byVersion: {},
    buckets: [],
    elapsedMs: 0,
    startedAtMs,
  };
  const second = (): number => Math.floor((Date.now() - startedAtMs) / 1000);
  const bucket = (): LoadBucket => {
    const t = second();
    while (result.buckets.length <= t)
      result.buckets.push({ t: result.buckets.length, ok: 0, failed: 0, byVersion: {} });
    return result.buckets[t] as LoadBucket;
  };
  const count = (status: string, version?: string): void => {
    const b = bucket();
    result.requests++;
    result.byStatus[status] = (result.byStatus[status] ?? 0) + 1;
    if (version !== undefined) {
      result.ok++;
      b.ok++;
      result.byVersion[version] = (result.byVersion[version] ?? 0) + 1;
      b.byVersion[version] = (b.byVersion[version] ?? 0) + 1;
    } else {
      result.failed++;
      b.failed++;
    }
    if (result.requests >= o.maxRequests) instance.stop();
  };
  const connections = Math.max(1, o.connections ?? 8);
  let finish: (err: Error | null) => void = () => undefined;
  const instance = autocannon(
    {
      url: o.url,
      connections,
      pipelining: 1,
      overallRate: o.rate,
      // The hard count bound; autocannon splits it over the connections.
      amount: Math.max(connections, o.maxRequests),
      timeout: o.timeoutSeconds ?? 5,
      ...(o.reconnectEvery !== 0 ? { reconnectRate: o.reconnectEvery ?? 20 } : {}),
      requests: [
        {
          method: 'GET',
          path: o.path ?? '/',
          onResponse: (status: number, body: string, _ctx: unknown, headers: Record<string, string>) => {
            const good = status >= 200 && status < 300;
            const version = VERSION_RE.exec(body ?? '')?.[1] ?? headers?.['x-web-version'] ?? '?';
            count(String(status), good ? version : undefined);
          },
        },
      ],
    },
    (err) => finish(err),
  );
  instance.on('reqError', (err: Error) => count(/timed out/.test(err.message) ? 'timeout' : 'error'));
  const timer = setTimeout(() => instance.stop(), o.maxDurationMs);
  const done = new Promise<LoadResult>((resolve, reject) => {
    finish = (err) => {
      clearTimeout(timer);
      result.elapsedMs = Date.now() - startedAtMs;
      bucket();
      if (err) reject(err);
      else resolve(result);
    };
  });
  return {
    result,
    done,
    second,
    stop() {
      instance.stop();
      return done;
    },
  };
}

/**
 * Sums per-second buckets into windows of `seconds` (window `t` covers [t·seconds, (t+1)·seconds)).
 */
export function windows(buckets: readonly LoadBucket[], seconds: number): LoadBucket[] {
  const out: LoadBucket[] = [];
  for (const b of buckets) {
    const i = Math.floor(b.t / seconds);
    const w = (out[i] ??= { t: i * seconds, ok: 0, failed: 0, byVersion: {} });
    w.ok += b.ok;
    w.failed += b.failed;
    for (const [v, n] of Object.entries(b.byVersion)) w.byVersion[v] = (w.byVersion[v] ?? 0) + n;
  }
  return out.filter((w) => w !== undefined);
}
