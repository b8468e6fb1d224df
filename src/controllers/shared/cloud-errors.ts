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
  AbortedReason,
  CredentialsUnavailableReason,
  ReconcileErrorReason,
  UnknownCloudErrorReason,
  CloudRequestRejectedReason,
  CloudUnavailableReason,
  InvalidCredentialsReason,
  NetworkErrorReason,
  PermissionDeniedReason,
  ThrottledReason,
} from '../../api/conditions.js';

/**
 * Classifies `err` into a reconcile error (DESIGN §3). A `ReconcileError` is returned unchanged.
 * A transient `CloudError` becomes a `TransientError`: `Throttled`, `NetworkError`,
 * `CredentialsUnavailable` (an expired STS token or a credential source that failed to refresh),
 * `Aborted` (shutdown), `UnknownCloudError` (the cloud layer could not classify it) or
 * `CloudUnavailable`. A permanent one becomes a `StalledError` only when a spec or RAM change is
 * needed: `PermissionDenied`, `InvalidCredentials` (wrong AccessKey), `CloudRequestRejected`
 * (invalid parameter) or the not-found reason of the caller; a permanent error of no known
 * category is retried as a `TransientError` `CloudRequestRejected`. Anything else becomes a
 * `TransientError` with reason `ReconcileError`.
 * @param context short prefix for the message, e.g. `"OOS GetTemplate"`.
 */
export function toReconcileError(err: unknown, context: string): ReconcileError {
  if (err instanceof TransientError || err instanceof StalledError) return err;
  if (isCloudError(err)) {
    const msg = sanitizeText(`${context}: ${err.message}`);
    if (err.code === 'Aborted') return new TransientError(AbortedReason, msg, { cause: err });
    if (err.kind === 'transient') {
      const reason =
        err.category === 'throttling'
          ? ThrottledReason
          : err.category === 'network'
            ? NetworkErrorReason
            : err.category === 'credentials'
              ? CredentialsUnavailableReason
              : err.code === 'UnknownError' || (err.category as string) === 'unknown'
                ? UnknownCloudErrorReason
                : CloudUnavailableReason;
      return new TransientError(reason, msg, { cause: err });
    }
    switch (err.category) {
      case 'permission':
        return new StalledError(PermissionDeniedReason, msg, { cause: err });
      case 'credentials':
        return new StalledError(InvalidCredentialsReason, msg, { cause: err });
      case 'invalidParameter':
      case 'notFound':
        return new StalledError(CloudRequestRejectedReason, msg, { cause: err });
      default:
        return new TransientError(
          err.code === 'UnknownError' ? UnknownCloudErrorReason : CloudRequestRejectedReason,
          msg,
          { cause: err },
        );
    }
  }
  const text = err instanceof Error ? err.message : String(err);
  return new TransientError(ReconcileErrorReason, sanitizeText(`${context}: ${text}`), { cause: err });
}

/** True when `err` is a CloudError saying the entity does not exist (e.g. `EntityNotExists.Template`). */
export function isNotFound(err: unknown): boolean {
  return isCloudError(err) && err.category === 'notFound';
}
