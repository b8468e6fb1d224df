/**
 * Status and finalizer writes for custom resources. See docs/adr/0003-status-writes.md for why the
 * status is written with a computed JSON merge patch (explicit nulls, no lock) by default, and
 * why the patcher remembers what it wrote until the informer catches up ({@link StatusPatcher.freshest}).
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

const DECIMAL = /^[0-9]+$/;

/**
 * Whether resourceVersion `a` is newer than `b`. Kubernetes resourceVersions are opaque strings,
 * but the API server backed by etcd hands out decimal etcd revisions, which grow with every write;
 * when both are decimal strings they are compared as (arbitrary-size) integers.
 * @returns `true` when `a` > `b`, `false` when `a` ≤ `b`, `undefined` when they cannot be compared
 *   (either is missing, empty or not a decimal string). Pure; never throws.
 */
export function isNewerResourceVersion(a: string | undefined, b: string | undefined): boolean | undefined {
  if (a === undefined || b === undefined || !DECIMAL.test(a) || !DECIMAL.test(b)) return undefined;
  return BigInt(a) > BigInt(b);
}

/** resourceVersions a remembered write is known to supersede (bounded, oldest dropped first). */
const MAX_SUPERSEDED_VERSIONS = 16;

/** What {@link StatusPatcher} remembers of its last write to one object. */
interface WrittenObject {
  /** The object returned by the API server for the write. */
  object: KubernetesObject;
  /** resourceVersions of the objects the write (and earlier remembered writes) were based on. */
  supersedes: string[];
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
 *
 * It also remembers, per object UID, the object the API server returned for its last successful
 * write (status patch or replace, finalizer patch), because the informer's copy lags a write: a
 * reconcile that starts right after one should diff against what was written, not against the
 * older cached copy. {@link freshest} hands that object out only while it is newer than the
 * cached one, so once the informer has caught up — or someone else (an admin repairing the
 * status) has written after us — the cache wins again and the entry is dropped.
 */
export class StatusPatcher {
  private readonly api: CustomObjectsApi;
  private readonly opts: StatusPatcherOptions;
  private readonly written = new Map<string, WrittenObject>();

  constructor(opts: StatusPatcherOptions) {
    this.opts = opts;
    this.api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /**
   * The object to reconcile against: `cached` (from the informer), or the object returned by this
   * patcher's last successful write to the same UID when that one is newer — its
   * `metadata.resourceVersion` is a larger integer than `cached`'s ({@link isNewerResourceVersion})
   * or, when the two cannot be compared, `cached` still carries a resourceVersion the write was
   * based on. Otherwise returns `cached` and forgets the write (the informer caught up, or
   * someone wrote after us). `cached` without a UID is returned as is. Never throws; no I/O.
   */
  freshest<T extends KubernetesObject>(cached: T): T {
    const uid = cached.metadata?.uid;
    if (!uid) return cached;
    const entry = this.written.get(uid);
    if (!entry) return cached;
    const cachedVersion = cached.metadata?.resourceVersion;
    const newer =
      isNewerResourceVersion(entry.object.metadata?.resourceVersion, cachedVersion) ??
      (cachedVersion !== undefined && entry.supersedes.includes(cachedVersion));
    if (newer) return entry.object as T;
    this.written.delete(uid);
    return cached;
  }

  /** Forgets the remembered write of `uid` (call when the object is gone). Unknown UIDs are ignored. */
  forget(uid: string): void {
    this.written.delete(uid);
  }

  /**
   * Remembers `written`, the API server's answer to a write whose input was `basedOn`. Internal to
   * the patcher (protected so tests can drive {@link freshest} without an API server). A write
   * based on the remembered object keeps the versions that one superseded.
   */
  protected recordWrite(basedOn: KubernetesObject, written: KubernetesObject): void {
    const uid = written.metadata?.uid ?? basedOn.metadata?.uid;
    if (!uid) return;
    const baseVersion = basedOn.metadata?.resourceVersion;
    const previous = this.written.get(uid);
    const supersedes =
      previous && baseVersion !== undefined && previous.object.metadata?.resourceVersion === baseVersion
        ? [...previous.supersedes]
        : [];
    if (baseVersion !== undefined && !supersedes.includes(baseVersion)) supersedes.push(baseVersion);
    this.written.set(uid, { object: written, supersedes: supersedes.slice(-MAX_SUPERSEDED_VERSIONS) });
  }

  /** Number of objects whose last write is remembered (for tests and debugging). */
  get rememberedWrites(): number {
    return this.written.size;
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
   * @param obj the object to diff against: normally `freshest(cached)`, so a status written by
   *   the previous reconcile is not diffed against an informer copy that predates it.
   * @returns `{ changed, object }`; `object` undefined when the resource no longer exists (404).
   *   A successful write is remembered for {@link freshest}; a 404 forgets the object.
   * @throws TransientError reason `KubernetesAPIError` on failure (never for 404).
   */
  async patchStatus<T extends ObjectWithStatus<unknown>>(
    obj: T,
    newStatus: NonNullable<T['status']>,
  ): Promise<PatchStatusResult<T>> {
    if (jsonEqual(obj.status, newStatus)) return { changed: false, object: obj };
    const { group, version, plural } = this.opts;
    try {
      const req = {
        group,
        version,
        plural,
        name: obj.metadata?.name ?? '',
        body: { status: statusMergePatch(obj.status, newStatus) },
      };
      const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
      const namespace = obj.metadata?.namespace ?? '';
      // A cluster-scoped kind (InstanceDisruptionBudget) has no namespace segment in its path.
      const updated = (await (namespace
        ? this.api.patchNamespacedCustomObjectStatus({ ...req, namespace }, merge)
        : this.api.patchClusterCustomObjectStatus(req, merge))) as T;
      this.recordWrite(obj, updated);
      return { changed: true, object: updated };
    } catch (err) {
      if (statusCode(err) === 404) {
        this.forgetObject(obj);
        return { changed: false, object: undefined };
      }
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
      const updated = (await (namespace
        ? this.api.replaceNamespacedCustomObjectStatus({ group, version, namespace, plural, name, body })
        : this.api.replaceClusterCustomObjectStatus({ group, version, plural, name, body }))) as T;
      this.recordWrite(obj, updated);
      return { changed: true, object: updated };
    } catch (err) {
      if (statusCode(err) === 404) {
        this.forgetObject(obj);
        return { changed: false, object: undefined };
      }
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
      const updated = (await this.api.patchNamespacedCustomObject(
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
      this.recordWrite(obj, updated);
      return updated;
    } catch (err) {
      if (statusCode(err) === 404) this.forgetObject(obj);
      if (notFoundOk && statusCode(err) === 404) return undefined;
      throw classify(err, 'finalizer update', obj, Array.isArray(body));
    }
  }

  private forgetObject(obj: KubernetesObject): void {
    const uid = obj.metadata?.uid;
    if (uid) this.written.delete(uid);
  }
}
