/**
 * A keyed, de-duplicating, rate-limited delaying workqueue with client-go semantics
 * (`k8s.io/client-go/util/workqueue`: queue.go, delaying_queue.go, default_rate_limiters.go,
 * rate_limiting_queue.go). See docs/adr/0001-workqueue.md for the design and the divergences.
 */
import { realClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import { noopQueueMetrics } from './metrics.js';
import type { QueueMetrics, WorkqueueMetricsProvider } from './metrics.js';

/** Computes how long a key waits before it is re-added by `addRateLimited`. */
export interface RateLimiter {
  /** Delay in **milliseconds** for the next retry of `key`; records one more failure for it. */
  when(key: string): number;
  /** Clears the failure history of `key` (call after a successful reconcile). */
  forget(key: string): void;
  /** How many failures `key` has had since the last `forget`. */
  numRequeues(key: string): number;
}

/** Options of {@link defaultRateLimiter}. All durations are milliseconds. */
export interface RateLimiterOptions {
  /** First per-key backoff delay (default 5 ms, controller-runtime; Flux uses 750 ms). */
  baseDelayMs?: number;
  /** Cap of the per-key backoff (default 1 000 000 ms = 1000 s; Flux uses 900 000 ms = 15 min). */
  maxDelayMs?: number;
  /** Overall token bucket refill rate in tokens per second (default 10; `Infinity` disables the bucket). */
  qps?: number;
  /** Overall token bucket size (default 100). */
  burst?: number;
}

/**
 * Per-key exponential backoff: `baseDelayMs * 2^failures`, capped at `maxDelayMs`
 * (client-go `ItemExponentialFailureRateLimiter`).
 */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseDelayMs: number,
    private readonly maxDelayMs: number,
  ) {}

  when(key: string): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    const delay = this.baseDelayMs * 2 ** exp;
    return Number.isFinite(delay) ? Math.min(delay, this.maxDelayMs) : this.maxDelayMs;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall token bucket shared by all keys (client-go `BucketRateLimiter` over
 * `golang.org/x/time/rate`): each `when()` reserves one token; when the bucket is empty the
 * reservation is granted in the future and its wait is returned. Not per key, so `forget` is a no-op.
 *
 * Hand-written (~15 lines) rather than p-queue: we need the *delay* of a reservation to fold
 * into the key's ready time, not a scheduler that runs tasks.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  when(): number {
    if (!Number.isFinite(this.qps)) return 0;
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** The largest delay of several limiters (client-go `MaxOfRateLimiter`). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

/**
 * controller-runtime's default controller rate limiter: per-key exponential backoff 5 ms → 1000 s
 * combined with an overall 10 qps / 100 burst token bucket (client-go `DefaultControllerRateLimiter`).
 */
export function defaultRateLimiter(opts: RateLimiterOptions = {}, clock: Clock = realClock): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialFailureRateLimiter(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1_000_000),
    new BucketRateLimiter(opts.qps ?? 10, opts.burst ?? 100, clock),
  );
}

/** Options of {@link Workqueue}. */
export interface WorkqueueOptions {
  /** Queue name; the `name` and `controller` label of the workqueue_* metrics (the controller name). */
  name: string;
  /** Clock for delays and metrics (default: real time). */
  clock?: Clock;
  /** A rate limiter, or options for {@link defaultRateLimiter}. */
  rateLimiter?: RateLimiter | RateLimiterOptions;
  /** Metric sink for the workqueue_* series (default: none). */
  metrics?: WorkqueueMetricsProvider;
}

interface Waiter {
  resolve(key: string | undefined): void;
  /** Only keys of at least this priority are handed to this waiter. */
  minPriority: number;
}

/**
 * Priorities of queued keys: a higher one is handed out first, FIFO within one priority. Like
 * controller-runtime's priority queue (v0.20+), keys of the informer's initial list get a low
 * priority, so objects that changed (or whose cloud work is running) are not stuck behind a full
 * re-list of thousands of objects after a restart or a leader hand-over.
 */
export const QueuePriority = {
  /** A reconcile waiting for work it started (an execution or invocation still running). */
  poll: 20,
  /** An object created, changed (generation, annotations) or deleted after the initial list. */
  change: 10,
  /** Default: error retries and callers that do not say. */
  normal: 0,
  /** The initial list, periodic drift checks and slow Stalled re-checks. */
  low: -100,
} as const;

/**
 * A keyed workqueue for reconcile keys (`namespace/name`), with client-go semantics:
 *
 * - **De-duplication**: a key that is queued (dirty) and not yet handed out is queued once.
 * - **No concurrent processing**: a key handed out by {@link get} is not handed out again until
 *   {@link done}; if it is added meanwhile it is re-queued once, when `done()` is called.
 * - **Delays**: {@link addAfter} keeps the *earliest* ready time per key.
 * - **Rate limiting**: {@link addRateLimited} delays by the rate limiter (per-key backoff and the
 *   overall bucket); {@link forget} resets the key's backoff.
 * - **Priorities** ({@link QueuePriority}): a key is handed out from the highest non-empty
 *   priority, FIFO within it; re-adding a queued key with a higher priority moves it up (never down).
 *
 * Divergence from client-go: after {@link shutDown} `get()` resolves `undefined` at once, even if
 * keys are still queued; the queued keys are dropped (reconcile is level-triggered, so the next
 * leader's initial LIST re-enqueues everything).
 */
export class Workqueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly metrics: QueueMetrics;

  /** FIFO lanes by priority, highest first; may hold stale entries (skipped by `take`). */
  private readonly lanes: Array<{ priority: number; keys: string[] }> = [];
  /** Keys ready to be handed out (dirty and not processing). */
  private readyCount = 0;
  /** Dirty keys and their priority. */
  private readonly dirty = new Map<string, number>();
  private readonly processing = new Set<string>();
  /** Time (ms) a key entered the queue, for `workqueue_queue_duration_seconds`. */
  private readonly addTimes = new Map<string, number>();
  /** Time (ms) a key was handed out, for work duration and the in-flight gauges. */
  private readonly startTimes = new Map<string, number>();
  private readonly waiters: Waiter[] = [];

  /** Keys waiting for their ready time (ms), earliest kept; plus a lazy min-heap over them. */
  private readonly waiting = new Map<string, { at: number; priority: number }>();
  private heap: Array<{ key: string; at: number }> = [];
  private timer: { handle: TimerHandle; at: number } | undefined;

  private shuttingDown = false;
  private drainWaiters: Array<() => void> = [];

  constructor(opts: WorkqueueOptions) {
    this.name = opts.name;
    this.clock = opts.clock ?? realClock;
    const rl = opts.rateLimiter;
    this.limiter = rl && 'when' in rl ? rl : defaultRateLimiter(rl ?? {}, this.clock);
    this.metrics = opts.metrics?.forQueue(opts.name, () => this.inFlightSeconds()) ?? noopQueueMetrics;
  }

  /**
   * Queues `key` now with `priority` (default {@link QueuePriority.normal}). Ignored after
   * shutdown; a key already queued is queued once, at the higher of its two priorities.
   */
  add(key: string, priority: number = QueuePriority.normal): void {
    if (this.shuttingDown) return;
    const current = this.dirty.get(key);
    if (current !== undefined) {
      if (priority <= current) return;
      this.dirty.set(key, priority);
      if (!this.processing.has(key)) this.push(key, priority); // the old entry is now stale
      return;
    }
    this.metrics.add();
    this.dirty.set(key, priority);
    if (!this.addTimes.has(key)) this.addTimes.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.readyCount++;
    this.push(key, priority);
    this.wakeOne();
  }

  /**
   * Queues `key` after `delayMs` milliseconds (client-go `AddAfter`). A delay ≤ 0 adds at once.
   * If the key is already waiting, the earlier ready time and the higher priority win.
   */
  addAfter(key: string, delayMs: number, priority: number = QueuePriority.normal): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key, priority);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing !== undefined && existing.at <= at) {
      existing.priority = Math.max(existing.priority, priority);
      return;
    }
    this.waiting.set(key, { at, priority: Math.max(priority, existing?.priority ?? priority) });
    this.heapPush({ key, at });
    this.armTimer();
  }

  /** Queues `key` after the rate limiter's delay and counts a retry (client-go `AddRateLimited`). */
  addRateLimited(key: string, priority: number = QueuePriority.normal): void {
    if (this.shuttingDown) return;
    this.metrics.retry();
    this.addAfter(key, this.limiter.when(key), priority);
  }

  /** Resets the backoff of `key`. Does not remove it from the queue. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures of `key` since its last `forget`. */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /**
   * Waits for the next key of at least `minPriority` (default: any) and marks it as processing;
   * the caller must call {@link done} with it. Resolves `undefined` once the queue is shut down
   * (immediately for pending and later calls).
   */
  get(minPriority: number = -Infinity): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take(minPriority);
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push({ resolve, minPriority }));
  }

  /** Marks `key` as no longer processing; if it was added meanwhile it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const started = this.startTimes.get(key);
    this.startTimes.delete(key);
    if (started !== undefined) this.metrics.done((this.clock.now() - started) / 1000);
    const priority = this.dirty.get(key);
    if (priority !== undefined && !this.shuttingDown) {
      this.readyCount++;
      this.push(key, priority);
      this.wakeOne();
    }
    if (this.processing.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Number of keys ready to be handed out (excludes keys processing or waiting for a delay). */
  len(): number {
    return this.readyCount;
  }

  /** Number of keys waiting for a delay (`addAfter` / `addRateLimited`). */
  waitingLen(): number {
    return this.waiting.size;
  }

  /** Whether {@link shutDown} or {@link shutDownWithDrain} was called. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops the queue: adds are ignored, pending and future `get()` calls resolve `undefined`,
   * queued and delayed keys are dropped, delay timers are cancelled.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
    this.waiting.clear();
    this.heap = [];
    // Every dirty key was counted in the depth gauge (including keys re-added while processing).
    this.metrics.dropped(this.dirty.size);
    this.dirty.clear();
    this.addTimes.clear();
    this.lanes.length = 0;
    this.readyCount = 0;
    for (const w of this.waiters.splice(0)) w.resolve(undefined);
    this.metrics.close();
  }

  /**
   * {@link shutDown}, then resolves once every key handed out by `get()` has been `done()`
   * (client-go `ShutDownWithDrain`). Callers wanting a deadline race this with a timer.
   */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string, priority: number): void {
    let lane = this.lanes.find((l) => l.priority === priority);
    if (!lane) {
      lane = { priority, keys: [] };
      this.lanes.push(lane);
      this.lanes.sort((a, b) => b.priority - a.priority);
    }
    lane.keys.push(key);
  }

  /**
   * The next ready key of at least `minPriority`: highest priority first, FIFO within it; stale
   * lane entries are dropped.
   */
  private next(minPriority: number): string | undefined {
    for (const lane of this.lanes) {
      if (lane.priority < minPriority) break; // lanes are sorted, highest first
      for (let key = lane.keys.shift(); key !== undefined; key = lane.keys.shift()) {
        if (this.dirty.get(key) === lane.priority && !this.processing.has(key)) return key;
      }
    }
    return undefined;
  }

  private take(minPriority = -Infinity): string | undefined {
    if (this.readyCount === 0) return undefined;
    const key = this.next(minPriority);
    if (key === undefined) return undefined;
    this.readyCount--;
    const now = this.clock.now();
    const added = this.addTimes.get(key);
    this.addTimes.delete(key);
    this.metrics.get(added === undefined ? 0 : (now - added) / 1000);
    this.processing.add(key);
    this.startTimes.set(key, now);
    this.dirty.delete(key);
    return key;
  }

  /** Hands ready keys to waiters in arrival order, each only keys of its minimum priority. */
  private wakeOne(): void {
    for (let i = 0; i < this.waiters.length && this.readyCount > 0;) {
      const w = this.waiters[i] as Waiter;
      const key = this.take(w.minPriority);
      if (key === undefined) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.resolve(key);
    }
  }

  private inFlightSeconds(): number[] {
    const now = this.clock.now();
    return [...this.startTimes.values()].map((t) => (now - t) / 1000);
  }

  // ---- delaying part (client-go delaying_queue.go: waitingForQueue heap + one timer) ----

  private armTimer(): void {
    const top = this.heap[0];
    if (!top) return;
    if (this.timer && this.timer.at <= top.at) return;
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    const at = top.at;
    this.timer = { at, handle: this.clock.setTimeout(() => this.onTimer(), at - this.clock.now()) };
  }

  private onTimer(): void {
    this.timer = undefined;
    const now = this.clock.now();
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > now) break;
      this.heapPop();
      // Skip stale heap entries superseded by an earlier addAfter for the same key.
      const entry = this.waiting.get(top.key);
      if (entry?.at !== top.at) continue;
      this.waiting.delete(top.key);
      this.add(top.key, entry.priority);
    }
    this.armTimer();
  }

  private heapPush(item: { key: string; at: number }): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private heapPop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
}
