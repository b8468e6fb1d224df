/**
 * The worker side of a controller: N workers take keys from a {@link Workqueue}, call the
 * reconciler, and account for the result exactly as controller-runtime's
 * `pkg/internal/controller/controller.go` `reconcileHandler` does.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isStalled, reasonOf } from './errors.js';
import { splitKey } from './informer.js';
import type { ControllerRuntimeMetrics } from './metrics.js';
import { initControllerMetrics } from './metrics.js';
import { sanitizeError } from './sanitize.js';
import { QueuePriority, type Workqueue } from './workqueue.js';

/** The object to reconcile (controller-runtime `reconcile.Request`). */
export interface ReconcileRequest {
  namespace: string;
  name: string;
}

/** Per-reconcile context handed to the reconciler. */
export interface ReconcileContext {
  /** pino child logger with `controller`, `namespace`, `name`, `reconcileID`. */
  log: Logger;
  /** A UUID identifying this reconcile in logs. */
  reconcileID: string;
  /** Aborted when the manager's shutdown deadline passes (or leadership is lost). */
  signal: AbortSignal;
}

/**
 * What a reconcile asks for. `{}` = done until the next watch event. `requeueAfterMs` (milliseconds,
 * > 0) = reconcile again after about that long (±5 % jitter is added) — use it for "waiting"
 * (an execution still running) and periodic drift checks; it is not an error.
 */
export interface ReconcileResult {
  requeueAfterMs?: number;
  /**
   * Queue priority of that requeue ({@link QueuePriority}; default `normal`): `poll` while cloud
   * work the reconcile started is still running, `low` for periodic drift checks.
   */
  priority?: number;
}

/**
 * A level-triggered reconciler: reads the current object (from the informer cache) and drives the
 * world towards it. Throw a `TransientError` (or any Error) to retry with backoff, a `StalledError`
 * to stop retrying until the object changes.
 */
export interface Reconciler {
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult>;
}

/** Options of {@link Controller}. */
export interface ControllerOptions {
  /** Controller name: the `controller` metric label and log field (e.g. `ecsextension`). */
  name: string;
  queue: Workqueue;
  reconciler: Reconciler;
  /** Number of concurrent workers (controller-runtime `MaxConcurrentReconciles`), ≥ 1. */
  workers: number;
  /**
   * Extra workers that take only keys queued at {@link QueuePriority.poll} or higher (a reconcile
   * whose cloud work is running or just finished), ≥ 0. Default `ceil(workers / 4)`. When every
   * regular worker waits in a long first reconcile (at a low `--cloud-qps` each one waits seconds
   * for the rate gate), a finished execution still reaches status without waiting for one of them.
   */
  pollWorkers?: number;
  logger: Logger;
  metrics: ControllerRuntimeMetrics;
  /** Random source in [0, 1) for the ±5 % requeue jitter (default `Math.random`). */
  random?: () => number;
}

/** Programming errors (the JS analogue of a Go panic): counted in `reconcile_panics_total`. */
function isPanic(err: unknown): boolean {
  return (
    !(err instanceof Error) ||
    err instanceof TypeError ||
    err instanceof ReferenceError ||
    err instanceof RangeError ||
    err instanceof SyntaxError
  );
}

/** Adds ±5 % jitter to a duration in milliseconds. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return ms * (0.95 + 0.1 * random());
}

/**
 * Runs the workers of one controller. Result accounting (controller-runtime):
 *
 * | outcome | metrics | queue |
 * |---|---|---|
 * | success (`{}`) | `reconcile_total{result="success"}` | `forget` |
 * | `{ requeueAfterMs }` | `result="requeue_after"` | `forget`, `addAfter(jitter(ms))` |
 * | thrown `StalledError` | `result="error"`, `reconcile_errors_total`, `terminal_reconcile_errors_total` | `forget`, no requeue (or `addAfter(recheckAfterMs)` when set) |
 * | other thrown value | `result="error"`, `reconcile_errors_total` (+ `reconcile_panics_total` for TypeError etc.) | `addRateLimited` |
 *
 * Every reconcile observes `reconcile_time_seconds` and moves `active_workers`.
 */
export class Controller {
  readonly name: string;
  private readonly opts: ControllerOptions;
  private readonly abort = new AbortController();
  private workerPromises: Promise<void>[] = [];
  private started = false;
  private readonly pollWorkers: number;

  constructor(opts: ControllerOptions) {
    if (!(opts.workers >= 1))
      throw new Error(`controller ${opts.name}: workers must be ≥ 1, got ${opts.workers}`);
    if (opts.pollWorkers !== undefined && !(Number.isInteger(opts.pollWorkers) && opts.pollWorkers >= 0))
      throw new Error(`controller ${opts.name}: pollWorkers must be an integer ≥ 0, got ${opts.pollWorkers}`);
    this.name = opts.name;
    this.opts = opts;
    this.pollWorkers = opts.pollWorkers ?? Math.ceil(opts.workers / 4);
    initControllerMetrics(opts.metrics, opts.name, opts.workers + this.pollWorkers);
  }

  /** The signal handed to reconciles; aborted by {@link abortInFlight}. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Starts the workers (idempotent). */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.opts.workers; i++) this.workerPromises.push(this.worker());
    for (let i = 0; i < this.pollWorkers; i++) this.workerPromises.push(this.worker(QueuePriority.poll));
  }

  /**
   * Stops intake (the queue is shut down; queued keys are dropped) and resolves when every worker
   * has finished its current reconcile. Pair with {@link abortInFlight} for a deadline.
   */
  async stop(): Promise<void> {
    await this.opts.queue.shutDownWithDrain();
    await Promise.all(this.workerPromises);
  }

  /** Aborts the signal of in-flight reconciles (shutdown deadline passed). */
  abortInFlight(reason = 'controller stopping'): void {
    this.abort.abort(new Error(reason));
  }

  /** Reconciles keys of at least `minPriority` until the queue shuts down. */
  private async worker(minPriority?: number): Promise<void> {
    for (;;) {
      const key = await this.opts.queue.get(minPriority);
      if (key === undefined) return;
      try {
        await this.reconcileHandler(key);
      } finally {
        this.opts.queue.done(key);
      }
    }
  }

  /** One reconcile of `key` with controller-runtime's result accounting. Never throws. */
  async reconcileHandler(key: string): Promise<void> {
    const { name: controller, queue, reconciler, metrics } = this.opts;
    const req = splitKey(key);
    const reconcileID = randomUUID();
    const log = this.opts.logger.child({ controller, namespace: req.namespace, name: req.name, reconcileID });
    const labels = { controller };
    metrics.activeWorkers.inc(labels);
    const endTimer = metrics.reconcileTime.startTimer(labels);
    const startedAt = Date.now();
    try {
      const result = await reconciler.reconcile(req, { log, reconcileID, signal: this.abort.signal });
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) {
        queue.forget(key);
        const delay = jitter(after, this.opts.random);
        queue.addAfter(key, delay, result.priority);
        metrics.reconcileTotal.inc({ controller, result: 'requeue_after' });
        log.debug(
          { requeueAfterMs: Math.round(delay), durationMs: Date.now() - startedAt },
          'reconcile done; requeue after delay',
        );
      } else {
        queue.forget(key);
        metrics.reconcileTotal.inc({ controller, result: 'success' });
        log.debug({ durationMs: Date.now() - startedAt }, 'reconcile done');
      }
    } catch (err) {
      metrics.reconcileErrors.inc(labels);
      metrics.reconcileTotal.inc({ controller, result: 'error' });
      const error = sanitizeError(err);
      if (isStalled(err)) {
        metrics.terminalReconcileErrors.inc(labels);
        queue.forget(key);
        if (err.recheckAfterMs !== undefined) {
          queue.addAfter(key, jitter(err.recheckAfterMs, this.opts.random), QueuePriority.low);
          log.error(
            { reason: err.reason, error, recheckAfterMs: err.recheckAfterMs },
            'reconcile stalled; re-checked on a slow period',
          );
        } else {
          log.error(
            { reason: err.reason, error },
            'reconcile stalled; not requeued until the object changes',
          );
        }
      } else {
        if (isPanic(err)) metrics.reconcilePanics.inc(labels);
        queue.addRateLimited(key);
        log.error(
          {
            reason: reasonOf(err),
            error,
            retries: queue.numRequeues(key),
            ...(isPanic(err) ? { stack: stackOf(err) } : {}),
          },
          'reconcile failed; requeued with backoff',
        );
      }
    } finally {
      endTimer();
      metrics.activeWorkers.dec(labels);
    }
  }
}

function stackOf(err: unknown): string | undefined {
  return err instanceof Error && err.stack ? sanitizeError(err.stack, 4096) : undefined;
}
