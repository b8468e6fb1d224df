/**
 * A bounded traffic source for tests: GET requests in rounds to every target (one request per
 * target per round, `concurrency` rounds in flight at most), over keep-alive connections, until
 * `maxRequests` are sent, `durationMs` passes or `stop()` is called, whichever comes first. It
 * counts answers by status code and by the `X-Web-Version` header the demo app
 * (deploy/examples/artifacts/web-*) sends, so the app's error counter moves and a test can see the
 * version mix. All traffic goes where the targets say (loopback in the emulator's sandbox).
 */
import { Agent, request } from 'node:http';

/** Options of {@link startTraffic}. */
export interface TrafficOptions {
  /**
   * Base URLs (`http://127.10.0.1:8080`), or a function returning them before each round (e.g.
   * the instances of the current batch).
   */
  targets: string[] | (() => string[]);
  /** Request path; default `/`. */
  path?: string;
  /** Stop after this many requests in total (the hard bound; required). */
  maxRequests: number;
  /** Stop after this long, milliseconds (the time bound; required). */
  durationMs: number;
  /** Pause between rounds, milliseconds; default 20. */
  intervalMs?: number;
  /** Rounds in flight at once; default 1. */
  concurrency?: number;
  /** Per-request timeout, milliseconds; default 2000. */
  timeoutMs?: number;
}

/** What a traffic run saw. */
export interface TrafficResult {
  /** Requests sent. */
  sent: number;
  /** Answers with a 2xx status. */
  ok: number;
  /** Answers with another status, and transport errors (refused, reset, timeout). */
  failed: number;
  /** Answers by status code; transport errors under `error`. */
  byStatus: Record<string, number>;
  /** Answers by `X-Web-Version` header (`?` when absent). */
  byVersion: Record<string, number>;
  /** Answers by target base URL: `{ ok, failed }`. */
  byTarget: Record<string, { ok: number; failed: number }>;
  /** Wall time of the run, milliseconds. */
  elapsedMs: number;
}

/** A traffic run in progress. */
export interface TrafficRun {
  /** Counts so far (live object). */
  readonly result: TrafficResult;
  /** Resolves when the run ends by one of its bounds or `stop()`. */
  readonly done: Promise<TrafficResult>;
  /** Ends the run after the requests in flight; resolves with the final counts. */
  stop(): Promise<TrafficResult>;
}

function once(
  agent: Agent,
  base: string,
  path: string,
  timeoutMs: number,
): Promise<{ status: string; version: string }> {
  return new Promise((resolve) => {
    const req = request(new URL(path, base), { agent, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: String(res.statusCode ?? 0),
          version: String(res.headers['x-web-version'] ?? '?'),
        }),
      );
      res.on('error', () => resolve({ status: 'error', version: '?' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 'error', version: '?' }));
    req.end();
  });
}

/** Starts sending traffic; see {@link TrafficOptions} for the bounds. */
export function startTraffic(o: TrafficOptions): TrafficRun {
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(1, o.concurrency ?? 1) });
  const started = Date.now();
  const result: TrafficResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    byStatus: {},
    byVersion: {},
    byTarget: {},
    elapsedMs: 0,
  };
  let stopping = false;
  const deadline = started + o.durationMs;
  const more = (): boolean => !stopping && result.sent < o.maxRequests && Date.now() < deadline;
  const record = (base: string, r: { status: string; version: string }): void => {
    const good = /^2\d\d$/.test(r.status);
    if (good) result.ok++;
    else result.failed++;
    result.byStatus[r.status] = (result.byStatus[r.status] ?? 0) + 1;
    if (r.status !== 'error') result.byVersion[r.version] = (result.byVersion[r.version] ?? 0) + 1;
    const t = (result.byTarget[base] ??= { ok: 0, failed: 0 });
    if (good) t.ok++;
    else t.failed++;
  };
  const worker = async (): Promise<void> => {
    while (more()) {
      const targets = typeof o.targets === 'function' ? o.targets() : o.targets;
      const round: Array<Promise<void>> = [];
      for (const base of targets) {
        if (!more()) break;
        result.sent++;
        round.push(once(agent, base, o.path ?? '/', o.timeoutMs ?? 2000).then((r) => record(base, r)));
      }
      await Promise.all(round);
      // no target (yet): wait a little instead of spinning
      const pause = targets.length === 0 ? Math.max(20, o.intervalMs ?? 20) : (o.intervalMs ?? 20);
      if (pause > 0)
        await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
    }
  };
  const done = Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 1) }, worker)).then(() => {
    agent.destroy();
    result.elapsedMs = Date.now() - started;
    return result;
  });
  return {
    result,
    done,
    stop() {
      stopping = true;
      return done;
    },
  };
}

/** Sends traffic until one of the bounds is reached; resolves with the counts. */
export function sendTraffic(o: TrafficOptions): Promise<TrafficResult> {
  return startTraffic(o).done;
}
