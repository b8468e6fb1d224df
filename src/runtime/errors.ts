/**
 * Reconcile error classes (after Flux `internal/error/error.go`). Errors are classified where they
 * are born; the manager's result accounting branches on the class:
 *
 * - {@link TransientError} (network, throttling, 5xx, 409 conflict): thrown → `reconcile_errors_total`
 *   +1, `result="error"`, the key is re-queued with per-key exponential backoff. Any other thrown
 *   `Error` is treated the same way.
 * - {@link StalledError} (invalid spec, permission denied, template missing): thrown → terminal,
 *   `terminal_reconcile_errors_total` +1, the key's backoff is forgotten and it is **not** re-queued;
 *   the next reconcile comes from a watch event (a spec change bumps `metadata.generation`). The
 *   reconciler should set `Stalled=True` with the same `reason` before throwing.
 * - **Waiting** (an OOS execution or Cloud Assistant invocation still running) is *not* an error:
 *   return `{ requeueAfterMs }` from `reconcile()`, which forgets the backoff and re-queues after that
 *   delay (±5 % jitter), `result="requeue_after"`.
 */

/** Base class: an error with a CamelCase `reason` suitable for a condition or an Event. */
export class ReconcileError extends Error {
  /** CamelCase reason, e.g. `ThrottlingError`, `TemplateNotFound`. */
  readonly reason: string;

  /**
   * @param reason CamelCase reason constant.
   * @param message human-readable, already-sanitized message (no credentials, no signed URLs).
   * @param options `cause`: the underlying error, kept for logs.
   */
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    this.name = new.target.name;
  }
}

/** A failure that may succeed on retry; the manager re-queues with per-key exponential backoff. */
export class TransientError extends ReconcileError {}

/**
 * A failure that cannot be fixed without a spec change; the manager does not re-queue the key
 * (controller-runtime `TerminalError`). `reason` and `message` are meant for the `Stalled` condition.
 */
export class StalledError extends ReconcileError {
  /**
   * When set, the key is re-checked after this many milliseconds even though the object did not
   * change (causes an admin fixes outside the object, such as a RAM policy). Undefined = wait for
   * the next watch event.
   */
  readonly recheckAfterMs?: number;

  constructor(reason: string, message: string, options?: { cause?: unknown; recheckAfterMs?: number }) {
    super(reason, message, options);
    if (options?.recheckAfterMs !== undefined && options.recheckAfterMs > 0)
      this.recheckAfterMs = options.recheckAfterMs;
  }
}

/** True when `err` is a {@link StalledError} (terminal: no requeue until the generation changes). */
export function isStalled(err: unknown): err is StalledError {
  return err instanceof StalledError;
}

/** True when `err` is a {@link TransientError}. Other non-stalled errors are retried too. */
export function isTransient(err: unknown): err is TransientError {
  return err instanceof TransientError;
}

/**
 * The CamelCase reason of a reconcile error, or `fallback` (default `ReconcileError`) for errors
 * without one.
 */
export function reasonOf(err: unknown, fallback = 'ReconcileError'): string {
  return err instanceof ReconcileError ? err.reason : fallback;
}
