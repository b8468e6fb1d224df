/**
 * The single call path of the cloud layer: rate limit → HTTP attempt → metrics → error mapping
 * → retry. Product wrappers (`oos.ts`, `ecs.ts`) only build parameters and map responses.
 *
 * Rate limiting: one p-queue per (product, region) with `intervalCap = qps`, `interval = 1000`
 * ms and `concurrency`. Each attempt (including retries) takes a slot; backoff sleeps happen
 * outside the queue so a sleeping retry does not block other calls.
 *
 * Retries: a small loop of our own rather than p-retry, because the delay must combine full
 * jitter with the server's `x-acs-retry-after` (p-retry 9 computes its own delay), every attempt
 * must re-enter the rate-limit queue, and each attempt must be counted in metrics. Policy:
 * - only `CloudError.retryable` errors (throttling, 5xx, network, state conflicts), at most
 *   `maxRetries` re-sends, delay = max(full jitter of min(cap, base·2^n), retry-after), capped;
 * - read actions retry every retryable error;
 * - writes that carry a `ClientToken` (OOS `StartExecution`, ECS `RunCommand`) are idempotent on
 *   the service side, so they retry like reads;
 * - other writes (`CancelExecution`, `StopInvocation`, `RunCommand` without a ClientToken) are
 *   re-sent only when the service certainly did not act (throttled, connection refused); a
 *   reset or 5xx is returned to the caller, whose reconcile re-reads state before acting again.
 */
import PQueue from 'p-queue';
import { CloudError, toCloudError } from './errors.js';
import type { CloudMetrics } from './metrics.js';
import type { CloudProduct } from './types.js';

/** How repeating an action affects the service. */
export type ActionSafety = 'read' | 'idempotentWrite' | 'write';

/**
 * Sends one HTTP request for `action` with structured RPC `params` (arrays and objects are
 * flattened to `Key.N` / `Key.N.Sub` by the transport) and resolves the parsed JSON body.
 */
export type SendFn = (action: string, params: Record<string, unknown>) => Promise<unknown>;

/** Minimal logger (pino's `Logger` satisfies it). Only sanitized text is passed to it. */
export interface CloudLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Backoff of the in-layer retry loop. */
export interface RetryPolicy {
  /** Re-sends after the first attempt (0 = never retry). */
  maxRetries: number;
  /** Base of the exponential backoff, milliseconds. */
  baseDelayMs: number;
  /** Cap of one backoff delay (also caps `x-acs-retry-after`), milliseconds. */
  maxDelayMs: number;
}

export interface ApiCallerOptions {
  product: CloudProduct;
  regionId: string;
  /** Safety of each action; unknown actions are treated as non-idempotent writes. */
  actions: Readonly<Record<string, ActionSafety>>;
  /** Requests started per second (p-queue `intervalCap` over 1000 ms). */
  qps: number;
  /** Requests in flight at once. */
  concurrency: number;
  retry: RetryPolicy;
  /**
   * Upper bound of one HTTP attempt, milliseconds (default: none). Enforced here because the
   * SDK's HTTP layer (httpx) arms its read timeout only on new sockets, not on reused
   * keep-alive connections. On expiry the attempt fails with a `NetworkError`; the orphaned
   * request is abandoned (its late result is ignored).
   */
  attemptTimeoutMs?: number;
  metrics: CloudMetrics;
  logger?: CloudLogger;
  /** Injectable for tests; default `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests; default `Math.random`. */
  random?: () => number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls the actions of one (product, region). */
export class ApiCaller {
  private readonly queue: PQueue;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly send: SendFn,
    private readonly opts: ApiCallerOptions,
  ) {
    this.queue = new PQueue({ concurrency: opts.concurrency, intervalCap: opts.qps, interval: 1000 });
    this.sleep = opts.sleep ?? defaultSleep;
    this.random = opts.random ?? Math.random;
  }

  get regionId(): string {
    return this.opts.regionId;
  }

  /** Calls waiting for a rate-limit slot plus calls in flight. */
  get pending(): number {
    return this.queue.size + this.queue.pending;
  }

  /**
   * Calls `action` with `params` (`RegionId` is always added; `undefined` values are dropped),
   * retrying per the policy above. Resolves the response body (a JSON object). Rejects with a
   * `CloudError` whose `attempts` says how many HTTP attempts were made.
   */
  async call(action: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const query = compact({ RegionId: this.opts.regionId, ...params });
    const { product, metrics } = this.opts;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.queue.add(() => this.attempt(action, query));
      } catch (raw) {
        const err = toCloudError(raw, product, action);
        err.attempts = attempt;
        if (!this.shouldRetry(err, action, query, attempt)) {
          if (attempt > 1 || err.kind === 'transient') {
            this.opts.logger?.debug(
              {
                product,
                action,
                regionId: this.opts.regionId,
                code: err.code,
                attempts: attempt,
                requestId: err.requestId,
              },
              `cloud API call failed: ${err.message}`,
            );
          }
          throw err;
        }
        const delay = this.backoff(attempt, err);
        metrics.retries.inc({ product, action });
        this.opts.logger?.debug(
          {
            product,
            action,
            regionId: this.opts.regionId,
            code: err.code,
            attempt,
            delayMs: Math.round(delay),
          },
          `retrying cloud API call after transient error: ${err.message}`,
        );
        await this.sleep(delay);
      }
    }
  }

  /** One HTTP attempt, timed and counted. */
  private async attempt(action: string, query: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { product, metrics } = this.opts;
    const end = metrics.duration.startTimer({ product, action });
    try {
      const body = await this.withTimeout(this.send(action, query));
      end();
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new CloudError({
          code: 'InvalidResponse',
          message: 'response body is not a JSON object',
          action,
          product,
          kind: 'transient',
          category: 'server',
        });
      }
      metrics.requests.inc({ product, action, code: 'OK' });
      return body as Record<string, unknown>;
    } catch (raw) {
      end();
      const err = toCloudError(raw, product, action);
      metrics.requests.inc({ product, action, code: err.code });
      throw err;
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    const ms = this.opts.attemptTimeoutMs;
    if (ms === undefined || ms <= 0) return p;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          Object.assign(new Error(`ReadTimeout: attempt exceeded ${ms} ms`), { name: 'RequestTimeoutError' }),
        );
      }, ms);
    });
    p.catch(() => undefined); // a late rejection of the abandoned request must not go unhandled
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  }

  private shouldRetry(
    err: CloudError,
    action: string,
    query: Record<string, unknown>,
    attempt: number,
  ): boolean {
    if (attempt > this.opts.retry.maxRetries || !err.retryable) return false;
    if (err.rejectedBeforeProcessing) return true;
    const safety = this.opts.actions[action] ?? 'write';
    if (safety === 'read') return true;
    if (safety === 'idempotentWrite')
      return typeof query['ClientToken'] === 'string' && query['ClientToken'] !== '';
    return false;
  }

  /** Full-jitter exponential backoff (ms), at least the server's retry-after, at most the cap. */
  private backoff(attempt: number, err: CloudError): number {
    const { baseDelayMs, maxDelayMs } = this.opts.retry;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const jitter = this.random() * ceiling;
    return Math.min(maxDelayMs, Math.max(jitter, err.retryAfterMs ?? 0));
  }
}

/** Drops `undefined`/`null` values and empty arrays (the SDK would send them as empty strings). */
export function compact(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}
