/**
 * Following one object for `ecsops get --watch`: LIST it by name (which also gives the
 * collection's resourceVersion), then WATCH from that resourceVersion, calling back with every
 * new version of the object. Reconnects from the last resourceVersion when a watch ends quietly
 * (client-node closes a watch after 30 s without data; the API server after `timeoutSeconds`),
 * re-lists at once on 410 Gone, and re-lists with exponential backoff after other errors — so the
 * view survives an API server restart. Errors before the first LIST succeeded are thrown (a
 * wrong kubeconfig, missing RBAC or CRD should fail fast, as `kubectl get -w` does).
 */
import { CustomObjectsApi, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { httpStatusOf } from '../runtime/sanitize.js';

/** A running watch request. */
export interface WatchHandle {
  /** Settles when the stream ends: `null` for a normal end, else the error. Never rejects. */
  done: Promise<Error | null>;
  /** Aborts the request (then `done` settles). */
  stop(): void;
}

/** A raw watch event: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (object = a `Status`). */
export type WatchEventHandler<T> = (type: string, object: T) => void;

/** Where {@link followObject} reads one object from (the API server, or a fake in tests). */
export interface ObjectSource<T extends KubernetesObject> {
  /**
   * The object (undefined when it does not exist) and the resourceVersion to watch from.
   * @throws on any API error (HTTP status in `code` or `statusCode`).
   */
  list(): Promise<{ object: T | undefined; resourceVersion: string }>;
  /**
   * Starts watching from `resourceVersion`; events go to `onEvent`.
   * @throws when the request cannot be made at all (no cluster in the kubeconfig).
   */
  watch(resourceVersion: string, onEvent: WatchEventHandler<T>): Promise<WatchHandle>;
}

/** Callbacks of {@link followObject}. */
export interface FollowHandlers<T> {
  /** A version of the object; undefined when it does not exist (first LIST) or was deleted. */
  onObject(object: T | undefined): void;
  /** A watch or re-list failed after the start; the next attempt is in `retryInMs` milliseconds. */
  onError?(err: Error, retryInMs: number): void;
}

/** Options of {@link followObject}. */
export interface FollowOptions {
  /** First retry delay after an error, milliseconds (default 1000). */
  minBackoffMs?: number;
  /** Cap of the retry delay, milliseconds (default 30 000). */
  maxBackoffMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Follows one object until `signal` aborts: `onObject` gets the listed object first, then every
 * version the watch delivers (undefined after a delete). Resolves when `signal` aborts.
 * @throws the error of the first LIST (nothing was shown yet, so there is nothing to keep alive).
 */
export async function followObject<T extends KubernetesObject>(
  source: ObjectSource<T>,
  handlers: FollowHandlers<T>,
  signal: AbortSignal,
  opts: FollowOptions = {},
): Promise<void> {
  const minDelay = opts.minBackoffMs ?? 1000;
  const maxDelay = opts.maxBackoffMs ?? 30_000;
  let delay = minDelay;
  let rv: string | undefined;
  let started = false;
  while (!signal.aborted) {
    try {
      if (rv === undefined) {
        const listed = await source.list();
        if (signal.aborted) return;
        started = true;
        rv = listed.resourceVersion;
        handlers.onObject(listed.object);
        if (signal.aborted) return;
      }
      let streamError: Error | undefined;
      let gone = false;
      const startedAt = Date.now();
      const handle = await source.watch(rv, (type, object) => {
        if (type === 'ERROR') {
          const status = object as unknown as { code?: number; message?: string };
          if (status.code === 410) gone = true;
          else
            streamError ??= Object.assign(new Error(status.message ?? 'watch error'), { code: status.code });
          return;
        }
        rv = object.metadata?.resourceVersion ?? rv;
        if (type === 'BOOKMARK') return;
        delay = minDelay; // data arrived: the connection is healthy
        handlers.onObject(type === 'DELETED' ? undefined : object);
      });
      const stop = (): void => handle.stop();
      if (signal.aborted) stop(); // aborted by a callback while the request was being made
      signal.addEventListener('abort', stop, { once: true });
      const err = await handle.done;
      signal.removeEventListener('abort', stop);
      if (signal.aborted) return;
      if (gone || httpStatusOf(err) === 410) {
        rv = undefined; // resourceVersion too old: list again at once
        continue;
      }
      if (streamError) throw streamError;
      // client-node ends a quiet watch with a TimeoutError: a normal end, reconnect from rv.
      if (err && err.name !== 'TimeoutError') throw err;
      // A watch that ends as soon as it starts must not become a busy loop.
      if (Date.now() - startedAt < 1000) await sleep(minDelay, signal);
    } catch (err) {
      if (signal.aborted) return;
      if (!started) throw err;
      const e = err instanceof Error ? err : new Error(String(err));
      handlers.onError?.(e, delay);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxDelay);
      rv = undefined; // the object may have changed meanwhile: list again
    }
  }
}

/**
 * Milliseconds the API server asked to wait (`Retry-After` header, or the Status body's
 * `details.retryAfterSeconds`), default 1000, at most 10 000.
 */
export function retryAfterMs(err: unknown): number {
  const e = err as { headers?: Record<string, string>; body?: unknown } | null;
  let seconds = Number(e?.headers?.['retry-after']);
  if (!Number.isFinite(seconds) && typeof e?.body === 'string') {
    try {
      seconds = Number(
        (JSON.parse(e.body) as { details?: { retryAfterSeconds?: number } }).details?.retryAfterSeconds,
      );
    } catch {
      seconds = NaN;
    }
  }
  return Math.min(10_000, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000);
}

/**
 * Calls `fn`, retrying up to `attempts - 1` times while the API server answers 429 Too Many
 * Requests (API Priority and Fairness, or a resource whose watch cache is still initializing
 * right after its CRD was created), waiting as it asks — as client-go does.
 */
export async function withTooManyRequestsRetries<R>(fn: () => Promise<R>, attempts = 5): Promise<R> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (httpStatusOf(err) !== 429 || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, retryAfterMs(err)));
    }
  }
}

/** One namespaced custom object, by name. */
export interface ObjectRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
}

/**
 * An {@link ObjectSource} over the API server: LIST and WATCH of the collection with the field
 * selector `metadata.name=<name>`, bookmarks on, and a server-side `timeoutSeconds` below
 * client-node's 30-second inactivity abort so quiet watches end cleanly.
 */
export function kubeObjectSource(kc: KubeConfig, ref: ObjectRef): ObjectSource<KubernetesObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kc);
  const { group, version, plural, namespace, name } = ref;
  const fieldSelector = `metadata.name=${name}`;
  const path = `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}`;
  return {
    async list() {
      const list = (await withTooManyRequestsRetries(() =>
        api.listNamespacedCustomObject({ group, version, namespace, plural, fieldSelector }),
      )) as {
        metadata?: { resourceVersion?: string };
        items?: KubernetesObject[];
      };
      const object = (list.items ?? []).find((o) => o.metadata?.name === name);
      return { object, resourceVersion: list.metadata?.resourceVersion ?? '' };
    },
    async watch(resourceVersion, onEvent) {
      let settle: (err: Error | null) => void = () => undefined;
      const done = new Promise<Error | null>((resolve) => (settle = resolve));
      const controller = await watcher.watch(
        path,
        { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 25 },
        (type: string, object: KubernetesObject) => onEvent(type, object),
        (err: unknown) => settle(err ? (err instanceof Error ? err : new Error(String(err))) : null),
      );
      return { done, stop: () => controller.abort() };
    },
  };
}
