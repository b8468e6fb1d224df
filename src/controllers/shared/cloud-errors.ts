/**
 * Maps cloud-layer failures (`CloudError`) onto the reconcile error classes (DESIGN §3):
 * transient → `TransientError` (per-key backoff), permanent → `StalledError` (no requeue until
 * the spec changes). Messages are already sanitized by the cloud layer; they are sanitized again
 * here because they end up in conditions and Events.
 */
import { isCloudError } from '../../cloud/errors.js';
import { StalledError, TransientError, type ReconcileError } from '../../runtime/errors.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import {
  CloudRequestRejectedReason,
  CloudUnavailableReason,
  InvalidCredentialsReason,
  NetworkErrorReason,
  PermissionDeniedReason,
  ThrottledReason,
} from '../../api/conditions.js';

/**
 * Classifies `err` into a reconcile error. A `ReconcileError` is returned unchanged; a
 * transient `CloudError` becomes a `TransientError` (reason `Throttled`, `CloudUnavailable` or
 * `NetworkError`); a permanent one a `StalledError` (`PermissionDenied`, `InvalidCredentials`
 * or `CloudRequestRejected`); anything else a `TransientError` with reason `ReconcileError`.
 * @param context short prefix for the message, e.g. `"OOS GetTemplate"`.
 */
export function toReconcileError(err: unknown, context: string): ReconcileError {
  if (err instanceof TransientError || err instanceof StalledError) return err;
  if (isCloudError(err)) {
    const msg = sanitizeText(`${context}: ${err.message}`);
    if (err.kind === 'transient') {
      const reason =
        err.category === 'throttling'
          ? ThrottledReason
          : err.category === 'network'
            ? NetworkErrorReason
            : CloudUnavailableReason;
      return new TransientError(reason, msg, { cause: err });
    }
    const reason =
      err.category === 'permission'
        ? PermissionDeniedReason
        : err.category === 'credentials'
          ? InvalidCredentialsReason
          : CloudRequestRejectedReason;
    return new StalledError(reason, msg, { cause: err });
  }
  const text = err instanceof Error ? err.message : String(err);
  return new TransientError('ReconcileError', sanitizeText(`${context}: ${text}`), { cause: err });
}

/** True when `err` is a CloudError saying the entity does not exist (e.g. `EntityNotExists.Template`). */
export function isNotFound(err: unknown): boolean {
  return isCloudError(err) && err.category === 'notFound';
}
