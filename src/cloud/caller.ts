/**
 * The single call path of the cloud layer: rate limit → HTTP attempt → metrics → error mapping
 * → retry. Product wrappers (`oos.ts`, `ecs.ts`) only build parameters and map responses.
 *
 * Rate limiting: one {@link RateGate} per (product, region): at most `qps` attempts start in any
 * sliding second, at most `concurrency` in flight, writes before polls before interactive reads
 * before drift reads, owners (resources) round-robin within a priority, and the rate shrinks on
 * throttling and recovers. Each attempt (including retries) takes a slot; backoff sleeps happen
 * outside the gate so a sleeping retry does not block other calls.
 *
 * Retries: a small loop of our own rather than p-retry, because the delay must combine full
 * jitter with the server's `x-acs-retry-after` (p-retry 9 computes its own delay), every attempt
 * must re-enter the rate-limit queue, and each attempt must be counted in metrics. Policy:
 * - only `CloudError.retryable` errors (throttling, 5xx, network, state conflicts), at most
 *   `maxRetries` re-sends, delay = max(full jitter of min(cap, base·2^n), retry-after), capped;
 * - read actions retry every retryable error;
 * - writes that carry a `ClientToken` (OOS `StartExecution`, ECS `RunCommand`) are idempotent on
 *   the service side, so they retry like reads;
 * - naturally idempotent writes (`CancelExecution`, `StopInvocation`, `TagResources`,
 *   `UntagResources`: the same effect however often they are repeated) retry like reads;
 * - other writes (`RunCommand` without a ClientToken, ...) are re-sent only when the service
 *   certainly did not act (throttled, connection refused); a reset or 5xx is returned to the
 *   caller, whose reconcile re-reads state before acting again.
 *
 * Cancellation: a call made with an `AbortSignal` ({@link ApiCaller.withSignal}) shares the
 * same queue as every other call of its (product, region). When the signal aborts:
 * - an attempt still waiting for a rate-limit slot is removed from the gate and never sent;
 * - a backoff sleep between retries is interrupted, and no further retry (or page, or batch: every
 *   page goes through {@link ApiCaller.call}) is started;
 * - an attempt already on the wire is **abandoned**, not cancelled: the call rejects at once, the
 *   HTTP request runs on until it completes or hits `attemptTimeoutMs` (holding its concurrency
 *   slot until then, since it is still on the wire), and its result is discarded — so a write may still
 *   take effect on the service (writes carry a ClientToken or are re-checked by the reconciler);
 * - the call rejects with a `CloudError` code `Aborted` (transient, category `aborted`, not
 *   retryable; see `isAborted`), whatever error the abort interrupted.
 */
import { abortedError, CloudError, toCloudError } from './errors.js';
import { PRIORITY, RateGate } from './limiter.js';
import type { CloudMetrics } from './metrics.js';
import type { CloudProduct } from './types.js';

/** How repeating an action affects the service. */
/**
 * How repeating an action affects the service:
 * - `read`: no effect; retried on every retryable error;
 * - `idempotentWrite`: idempotent by its `ClientToken` (same token → the same execution or
 *   invocation); retried like a read when it carries one;
 * - `naturallyIdempotentWrite`: the same effect however often it is repeated (cancel an execution,
 *   stop an invocation, set or remove a tag, set a load-balancer weight); retried like a read;
 * - `write`: anything else; re-sent only when the service certainly did not act.
 */
export type ActionSafety = 'read' | 'idempotentWrite' | 'naturallyIdempotentWrite' | 'write';

/**
 * Sends one HTTP request for `action` with structured RPC `params` (arrays and objects are
 * flattened to `Key.N` / `Key.N.Sub` by the transport) and resolves the parsed JSON body.
 */
export type SendFn = (action: string, params: Record<string, unknown>) => Promise<unknown>;

/**
 * The calls of one (product, region), as the product wrappers (`OosClient`, `EcsClient`) see
 * them. {@link ApiCaller} implements it; {@link ApiCaller.withSignal} returns one bound to an
 * `AbortSignal`.
 */
export interface RegionCaller {
  readonly regionId: string;
  /** See {@link ApiCaller.call}. */
  call(
    action: string,
    params?: Record<string, unknown>,
    opts?: CallOptions,
  ): Promise<Record<string, unknown>>;
}

/** Per-call options of {@link ApiCaller.call}. */
export interface CallOptions {
  /** Stops the call (see the module comment): it then rejects with a `CloudError` code `Aborted`. */
  signal?: AbortSignal;
  /** {@link PRIORITY} class; default derived from the action ({@link actionPriority}). */
  priority?: number;
  /** Fairness key (e.g. the resource `Kind/namespace/name`); attempts of one owner take turns with others. */
  owner?: string;
  /**
   * Lowest {@link PRIORITY} of the call when `priority` is unset: e.g. `interactive` lifts the
   * drift reads of an object whose spec just changed above other objects' background drift reads,
   * while its writes and polls keep their higher class.
   */
  minPriority?: number;
}

/** Read actions that poll running work (served before drift reads). */
const POLL_ACTIONS = new Set([
  'ListExecutions',
  'ListTaskExecutions',
  'DescribeInvocations',
  'DescribeInvocationResults',
]);
/** Read actions of background drift checks (served last). */
const BACKGROUND_ACTIONS = new Set([
  'ListInstancePackageStates',
  'ListInstancePatchStates',
  'ListInstancePatches',
]);

/** The default {@link PRIORITY} of `action`: writes first, then polls, interactive reads, drift reads. */
export function actionPriority(action: string, safety: ActionSafety | undefined): number {
  if (safety !== 'read') return PRIORITY.write;
  if (POLL_ACTIONS.has(action)) return PRIORITY.poll;
  if (BACKGROUND_ACTIONS.has(action)) return PRIORITY.background;
  return PRIORITY.interactive;
}

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
  /** Per-action attempts per sliding second, below `qps` (see limiter.ts). */
  actionQps?: Readonly<Record<string, number>>;
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
  /**
   * Injectable for tests; default `setTimeout`. Resolves after `ms` milliseconds; may resolve
   * early when `signal` aborts (the caller also stops waiting on abort when it does not).
   */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Injectable for tests; default `Math.random`. */
  random?: () => number;
}

/** Largest delay Node.js timers honour (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, ms)),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Resolves when `signal` aborts (never without one); `dispose()` removes the listener. */
function whenAborted(signal: AbortSignal | undefined): { promise: Promise<void>; dispose: () => void } {
  if (!signal) return { promise: new Promise<void>(() => undefined), dispose: () => undefined };
  let onAbort: (() => void) | undefined;
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => onAbort && signal.removeEventListener('abort', onAbort) };
}

/** Calls the actions of one (product, region). */
export class ApiCaller implements RegionCaller {
  private readonly queue: RateGate;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly send: SendFn,
    private readonly opts: ApiCallerOptions,
  ) {
    this.queue = new RateGate({
      qps: opts.qps,
      concurrency: opts.concurrency,
      ...(opts.actionQps ? { actionQps: opts.actionQps } : {}),
    });
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

  /** The effective rate after adaptive throttling, attempts per second. */
  get rate(): number {
    return this.queue.rate;
  }

  /**
   * A view of this caller whose calls all carry `signal` (same queue, same rate limit). Returns
   * `this` when `signal` is undefined.
   */
  withSignal(signal: AbortSignal | undefined): RegionCaller {
    return this.view({ ...(signal ? { signal } : {}) });
  }

  /**
   * A view of this caller whose calls carry `defaults` (signal, owner, priority) unless a call
   * overrides them; same gate, same rate limit. Returns `this` when `defaults` is empty.
   */
  view(defaults: CallOptions): RegionCaller {
    if (
      !defaults.signal &&
      defaults.owner === undefined &&
      defaults.priority === undefined &&
      defaults.minPriority === undefined
    )
      return this;
    return {
      regionId: this.regionId,
      call: (action, params, opts) => this.call(action, params, { ...defaults, ...opts }),
    };
  }

  /**
   * Calls `action` with `params` (`RegionId` is always added; `undefined` values are dropped),
   * retrying per the policy above. Resolves the response body (a JSON object). Rejects with a
   * `CloudError` whose `attempts` says how many HTTP attempts were made; when `opts.signal`
   * aborts (before or during the call), with a `CloudError` code `Aborted` (see the module
   * comment for what happens to queued and in-flight attempts).
   */
  async call(
    action: string,
    params: Record<string, unknown> = {},
    opts: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const query = compact({ RegionId: this.opts.regionId, ...params });
    const { product, metrics } = this.opts;
    const { signal } = opts;
    let sent = 0;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw this.aborted(action, signal, sent);
      try {
        const run = (): Promise<Record<string, unknown>> => {
          sent = attempt;
          return this.attempt(action, query);
        };
        const gated = this.queue.run(run, {
          priority:
            opts.priority ??
            Math.max(opts.minPriority ?? 0, actionPriority(action, this.opts.actions[action])),
          action,
          ...(opts.owner !== undefined ? { owner: opts.owner } : {}),
          ...(signal ? { signal } : {}),
        });
        if (!signal) return await gated;
        // An attempt on the wire is abandoned at once on abort (its late result is ignored).
        gated.catch(() => undefined);
        const stop = whenAborted(signal);
        try {
          return await Promise.race([gated, stop.promise.then(() => Promise.reject(signal.reason))]);
        } finally {
          stop.dispose();
        }
      } catch (raw) {
        if (signal?.aborted) throw this.aborted(action, signal, sent);
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
        const abort = whenAborted(signal);
        try {
          await Promise.race([this.sleep(delay, signal), abort.promise]);
        } finally {
          abort.dispose();
        }
      }
    }
  }

  private aborted(action: string, signal: AbortSignal, attempts: number): CloudError {
    const err = abortedError(this.opts.product, action, signal.reason, attempts);
    this.opts.logger?.debug(
      { product: this.opts.product, action, regionId: this.opts.regionId, attempts },
      'cloud API call aborted',
    );
    return err;
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
      if (err.category === 'throttling') this.queue.throttled();
      throw err;
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    const ms = this.opts.attemptTimeoutMs;
    if (ms === undefined || ms <= 0) return p;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => {
          reject(
            Object.assign(new Error(`ReadTimeout: attempt exceeded ${ms} ms`), {
              name: 'RequestTimeoutError',
            }),
          );
        },
        Math.min(MAX_TIMER_MS, ms),
      );
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
    if (safety === 'read' || safety === 'naturallyIdempotentWrite') return true;
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
