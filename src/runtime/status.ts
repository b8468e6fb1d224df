/**
 * Status and finalizer writes for custom resources. See docs/adr/0003-status-writes.md for why the
 * status is written with a computed JSON merge patch (explicit nulls, no lock) by default.
 */
import { isDeepStrictEqual } from 'node:util';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { TransientError } from './errors.js';
import { sanitizeText } from './sanitize.js';

/** A custom resource with a status of type `S`. */
export type ObjectWithStatus<S> = KubernetesObject & { status?: S };

/** Options of {@link StatusPatcher}. */
export interface StatusPatcherOptions {
  kubeConfig: KubeConfig;
  group: string;
  version: string;
  /** Lower-case plural, e.g. `ecsextensions`. */
  plural: string;
}

/** Result of {@link StatusPatcher.patchStatus}. */
export interface PatchStatusResult<T> {
  /** True when a write was sent (the status differed). */
  changed: boolean;
  /** The object as returned by the API server (or the input when unchanged); undefined if it is gone (404). */
  object: T | undefined;
}

/**
 * Deep equality for JSON-shaped values, independent of object key order; `undefined`-valued keys
 * count as absent and Dates compare by their JSON form (what the API server would store).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(toJson(a), toJson(b));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The JSON merge patch (RFC 7386) turning `from` into `to`: keys of `to` that differ are set
 * (nested objects recursively, arrays and scalars whole), keys of `from` missing from `to` are
 * `null`. Both are first normalised through JSON (undefined keys dropped, Dates as strings).
 * Returns `to` itself when `from` is not an object.
 */
export function statusMergePatch(from: unknown, to: unknown): unknown {
  return mergeDiff(toJson(from), toJson(to));
}

function mergeDiff(from: unknown, to: unknown): unknown {
  if (!isPlainObject(from) || !isPlainObject(to)) return to === undefined ? null : to;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const old = from[key];
    if (isDeepStrictEqual(old, value)) continue;
    patch[key] = isPlainObject(old) && isPlainObject(value) ? mergeDiff(old, value) : value;
  }
  return patch;
}

function toJson(v: unknown): unknown {
  return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as unknown);
}

/**
 * The Kubernetes `Status.message` of a client-node `ApiException` (whose own `message` also
 * carries response headers), or the error's message.
 */
export function kubeErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // not JSON: fall through
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * A failed JSON patch `test` op. The API server answers 422 `Invalid` with the generic message
 * "the server rejected our request due to an error in our request" and no `details.causes`
 * (field validation failures, e.g. a finalizer added to a deleting object, list their causes).
 */
function isJsonPatchTestFailure(err: unknown): boolean {
  if (statusCode(err) !== 422) return false;
  const body = (err as { body?: unknown }).body;
  try {
    const status = JSON.parse(typeof body === 'string' ? body : '') as {
      reason?: string;
      details?: { causes?: unknown[] };
    };
    return status.reason === 'Invalid' && (status.details?.causes ?? []).length === 0;
  } catch {
    return false;
  }
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function classify(err: unknown, what: string, obj: KubernetesObject, jsonPatchTest = false): TransientError {
  const ref = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  if (statusCode(err) === 409 || (jsonPatchTest && isJsonPatchTestFailure(err))) {
    return new TransientError('Conflict', `${what} of ${ref}: the object was modified; will retry`, {
      cause: err,
    });
  }
  return new TransientError(
    'KubernetesAPIError',
    `${what} of ${ref} failed (HTTP ${statusCode(err) ?? 'n/a'}): ${sanitizeText(kubeErrorMessage(err)).slice(0, 512)}`,
    { cause: err },
  );
}

/**
 * Writes the `/status` subresource and `metadata.finalizers` of one custom resource kind, never
 * touching `spec` (Argo CD would report OutOfSync) or other metadata.
 */
export class StatusPatcher {
  private readonly api: CustomObjectsApi;
  private readonly opts: StatusPatcherOptions;

  constructor(opts: StatusPatcherOptions) {
    this.opts = opts;
    this.api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /**
   * Writes `newStatus` only if it differs from `obj.status` ({@link jsonEqual}), as a JSON merge
   * patch on the `/status` subresource computed by {@link statusMergePatch}: changed keys are sent,
   * keys absent from `newStatus` are sent as `null` (removed), arrays are sent whole. No
   * resourceVersion precondition (Flux / controller-runtime `MergeFrom` style): the controller is
   * the only status writer, `obj` may be a little stale (e.g. right after `addFinalizer`), and the
   * informer event of this write re-enqueues the key, so a diff against a stale cache converges on
   * the next reconcile. Use {@link replaceStatus} when an optimistic lock is wanted.
   *
   * @param obj the object as read from the informer cache.
   * @returns `{ changed, object }`; `object` undefined when the resource no longer exists (404).
   * @throws TransientError reason `KubernetesAPIError` on failure (never for 404).
   */
  async patchStatus<T extends ObjectWithStatus<unknown>>(
    obj: T,
    newStatus: NonNullable<T['status']>,
  ): Promise<PatchStatusResult<T>> {
    if (jsonEqual(obj.status, newStatus)) return { changed: false, object: obj };
    const { group, version, plural } = this.opts;
    try {
      const updated = (await this.api.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          plural,
          namespace: obj.metadata?.namespace ?? '',
          name: obj.metadata?.name ?? '',
          body: { status: statusMergePatch(obj.status, newStatus) },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as T;
      return { changed: true, object: updated };
    } catch (err) {
      if (statusCode(err) === 404) return { changed: false, object: undefined };
      throw classify(err, 'status patch', obj);
    }
  }

  /**
   * Like {@link patchStatus} but a full replace of the status subresource
   * (`replaceNamespacedCustomObjectStatus`, HTTP PUT) carrying `obj.metadata.resourceVersion`:
   * an optimistic lock, so `obj` must be the latest version.
   * @throws TransientError reason `Conflict` on 409 (stale object: retry with backoff),
   *   `KubernetesAPIError` on other failures (never for 404).
   */
  async replaceStatus<T extends ObjectWithStatus<unknown>>(
    obj: T,
    newStatus: NonNullable<T['status']>,
  ): Promise<PatchStatusResult<T>> {
    if (jsonEqual(obj.status, newStatus)) return { changed: false, object: obj };
    const { group, version, plural } = this.opts;
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    const body = {
      apiVersion: obj.apiVersion ?? `${group}/${version}`,
      kind: obj.kind,
      metadata: { name, namespace, resourceVersion: obj.metadata?.resourceVersion },
      status: toJson(newStatus),
    };
    try {
      const updated = (await this.api.replaceNamespacedCustomObjectStatus({
        group,
        version,
        namespace,
        plural,
        name,
        body,
      })) as T;
      return { changed: true, object: updated };
    } catch (err) {
      if (statusCode(err) === 404) return { changed: false, object: undefined };
      throw classify(err, 'status update', obj);
    }
  }

  /**
   * Adds `finalizer` to `metadata.finalizers` if absent. Returns the updated object (or `obj`
   * unchanged when present). Locking: when the list is non-empty, a JSON patch whose `test` op
   * checks the list is still what `obj` shows (so only a concurrent finalizer change conflicts, not
   * a status write); when it is empty, a merge patch with `metadata.resourceVersion` as the
   * precondition (controller-runtime `MergeFromWithOptimisticLock`).
   * @throws TransientError (`Conflict` when the lock fails, `KubernetesAPIError` otherwise, incl. 404).
   */
  async addFinalizer<T extends KubernetesObject>(obj: T, finalizer: string): Promise<T> {
    const current = obj.metadata?.finalizers ?? [];
    if (current.includes(finalizer)) return obj;
    return (await this.patchFinalizers(obj, current, [...current, finalizer])) ?? obj;
  }

  /**
   * Removes `finalizer` from `metadata.finalizers` if present, with a JSON patch that `test`s the
   * list first. Returns the updated object, `obj` when it was absent, or undefined when the object
   * is gone (404: removing the last finalizer of a deleting object deletes it).
   * @throws TransientError (`Conflict` when the list changed meanwhile, `KubernetesAPIError` otherwise).
   */
  async removeFinalizer<T extends KubernetesObject>(obj: T, finalizer: string): Promise<T | undefined> {
    const current = obj.metadata?.finalizers ?? [];
    if (!current.includes(finalizer)) return obj;
    return this.patchFinalizers(
      obj,
      current,
      current.filter((f) => f !== finalizer),
      true,
    );
  }

  private async patchFinalizers<T extends KubernetesObject>(
    obj: T,
    current: string[],
    finalizers: string[],
    notFoundOk = false,
  ): Promise<T | undefined> {
    const { group, version, plural } = this.opts;
    const body =
      current.length > 0
        ? [
            { op: 'test', path: '/metadata/finalizers', value: current },
            { op: 'replace', path: '/metadata/finalizers', value: finalizers },
          ]
        : { metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion } };
    try {
      return (await this.api.patchNamespacedCustomObject(
        {
          group,
          version,
          plural,
          namespace: obj.metadata?.namespace ?? '',
          name: obj.metadata?.name ?? '',
          body,
        },
        setHeaderOptions(
          'Content-Type',
          Array.isArray(body) ? PatchStrategy.JsonPatch : PatchStrategy.MergePatch,
        ),
      )) as T;
    } catch (err) {
      if (notFoundOk && statusCode(err) === 404) return undefined;
      throw classify(err, 'finalizer update', obj, Array.isArray(body));
    }
  }
}
