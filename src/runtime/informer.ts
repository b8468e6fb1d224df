/**
 * An informer for one custom resource: client-node's `makeInformer` (LIST + WATCH with
 * resourceVersion tracking and re-list on 410 Gone) plus what client-node leaves out — restarts
 * after other errors, with exponential backoff, a sync signal (client-go `HasSynced`), and logs an
 * admin can read: one line per problem, not one dump per retry.
 */
import { CustomObjectsApi, makeInformer } from '@kubernetes/client-node';
import type {
  Informer,
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
  ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { realClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import { errorSummary, httpStatusOf, sanitizeError } from './sanitize.js';

/**
 * How long an informer may keep failing with transient errors (429, 5xx, connection refused or
 * reset, timeouts) before it says so at `warn`, in milliseconds. Until then each retry is logged at
 * `debug`: an API server that is starting (or restarting, or initializing a new CRD's storage:
 * `429 storage is (re)initializing`) answers like this for a few seconds, which is expected.
 * 30 s is about five restarts (1 + 2 + 4 + 8 + 16 s) and well beyond a kube-apiserver start.
 */
export const INFORMER_QUIET_RETRY_MS = 30_000;

/**
 * The shortest interval between two `warn` / `error` lines of one informer for the same problem,
 * in milliseconds; the retries in between are logged at `debug`.
 */
export const INFORMER_REPEAT_LOG_MS = 5 * 60_000;

/** Read access to an informer's cache; what reconcilers get to read objects without API calls. */
export interface InformerCache<T> {
  /** The cached object `namespace/name` (namespace `''` for cluster-scoped), or undefined. */
  get(namespace: string, name: string): T | undefined;
  /** Every cached object (a new array; the objects are shared — do not mutate them). */
  list(): T[];
  /** True once the initial LIST has been applied (stays true across later restarts). */
  hasSynced(): boolean;
}

/** Handlers of an informer's events (for enqueueing keys or bookkeeping; they must not throw). */
export interface InformerEvents<T> {
  /** Objects seen for the first time (including the initial LIST). */
  onAdd(fn: (obj: T) => void): void;
  /** Objects whose resourceVersion changed. */
  onUpdate(fn: (obj: T) => void): void;
  /** Deleted objects (the last known state). */
  onDelete(fn: (obj: T) => void): void;
}

/** Which custom resource to watch. */
export interface CustomResourceRef {
  group: string;
  version: string;
  /** Lower-case plural, e.g. `ecsextensions`. */
  plural: string;
  /** Namespace to watch; undefined = all namespaces. */
  namespace?: string;
}

/** Options of {@link CustomResourceInformer}. */
export interface CustomResourceInformerOptions extends CustomResourceRef {
  kubeConfig: KubeConfig;
  /** Label selector for LIST and WATCH (e.g. `app=x`). */
  labelSelector?: string;
  logger?: Logger;
  clock?: Clock;
  /** First restart delay after an error, in milliseconds (default 1000). */
  restartBaseDelayMs?: number;
  /** Cap of the restart delay, in milliseconds (default 30 000, like client-node's reconnect cap). */
  restartMaxDelayMs?: number;
  /** Transient failures stay at `debug` for this long, in milliseconds (default {@link INFORMER_QUIET_RETRY_MS}). */
  quietRetryMs?: number;
  /** Minimum interval between repeated log lines of one problem, in milliseconds (default {@link INFORMER_REPEAT_LOG_MS}). */
  repeatLogIntervalMs?: number;
  /**
   * Appended to the error logged when the resource is not served (HTTP 404: its CRD is not
   * installed), e.g. how to install the CRD; main.ts knows the repository layout and the flags.
   */
  notFoundHint?: string;
}

/** How an informer failure is reported: see {@link CustomResourceInformer}. */
type FailureClass = 'notFound' | 'denied' | 'transient' | 'other';

/** Network error codes of a peer that is down, starting or overloaded (Node.js and undici). */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** True when `err` or one of its causes (or an AggregateError's first error) has a transient network code. */
function isTransientNetworkError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e.name === 'TimeoutError') return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return true;
    e = e instanceof AggregateError && !e.cause ? (e.errors as unknown[])[0] : e.cause;
  }
  return false;
}

function classify(err: unknown): FailureClass {
  const status = httpStatusOf(err);
  if (status === 404) return 'notFound';
  if (status === 401 || status === 403) return 'denied';
  if (status === 429 || (status !== undefined && status >= 500)) return 'transient';
  if (status === undefined && isTransientNetworkError(err)) return 'transient';
  return 'other';
}

/** The `namespace/name` key of an object (client-go `MetaNamespaceKeyFunc`); `name` alone when cluster-scoped. */
export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key produced by {@link objectKey} into namespace (`''` if none) and name. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The API path of a custom resource collection, as watched by the informer. */
export function resourcePath(ref: CustomResourceRef): string {
  return ref.namespace
    ? `/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`
    : `/apis/${ref.group}/${ref.version}/${ref.plural}`;
}

type Handler<T> = (obj: T) => void;

/**
 * A restarting informer over a custom resource, generic over the object type `T`.
 *
 * Handlers (`onAdd`, `onUpdate`, `onDelete`) are for enqueueing keys only (level-triggered
 * reconcile); a throwing handler is logged and does not disturb the informer. `onUpdate` fires only
 * when the resourceVersion changed. After a 410 Gone client-node re-lists, emitting `onDelete`
 * for objects that vanished meanwhile.
 *
 * Errors other than 410 stop client-node's informer; this wrapper restarts it after
 * `restartBaseDelayMs`, doubling up to `restartMaxDelayMs` on consecutive failures, and resets the
 * delay once a start completes without error. A restart keeps the last resourceVersion.
 *
 * Failures are logged as one line each — `error` is {@link errorSummary}'s `HTTP 429
 * TooManyRequests: storage is (re)initializing`, never client-node's header dump — at a level that
 * says whether someone has to act:
 * - transient (429, 5xx, connection refused / reset, timeouts): `debug` while the informer has been
 *   failing for less than `quietRetryMs` (30 s; an API server that is starting answers like this),
 *   then `warn`;
 * - not found (404: the CRD is not installed): `error` at once, naming the CRD, plus `notFoundHint`;
 * - denied (401, 403: RBAC): `error` at once; anything else: `warn`.
 * A `warn` / `error` line is not repeated for the same problem within `repeatLogIntervalMs` (5 min);
 * the retries in between go to `debug`. After such a line, the recovery is logged at `info`.
 */
export class CustomResourceInformer<T extends KubernetesObject>
  implements InformerCache<T>, InformerEvents<T>
{
  readonly ref: CustomResourceRef;
  private readonly informer: Informer<T> & ObjectCache<T>;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly quietRetryMs: number;
  private readonly repeatLogIntervalMs: number;
  private readonly notFoundHint: string | undefined;
  private delayMs = 0;
  private errors = 0;
  /** The current run of failures (since the last successful start); undefined while healthy. */
  private failing:
    { since: number; count: number; problem: string; logged?: { text: string; at: number } } | undefined;
  private synced = false;
  private running = false;
  private restartTimer: TimerHandle | undefined;
  private syncWaiters: Array<() => void> = [];
  private readonly handlers = {
    add: [] as Handler<T>[],
    update: [] as Handler<T>[],
    delete: [] as Handler<T>[],
  };

  constructor(opts: CustomResourceInformerOptions) {
    this.ref = { group: opts.group, version: opts.version, plural: opts.plural, namespace: opts.namespace };
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger;
    this.baseDelayMs = opts.restartBaseDelayMs ?? 1000;
    this.maxDelayMs = opts.restartMaxDelayMs ?? 30_000;
    this.quietRetryMs = opts.quietRetryMs ?? INFORMER_QUIET_RETRY_MS;
    this.repeatLogIntervalMs = opts.repeatLogIntervalMs ?? INFORMER_REPEAT_LOG_MS;
    this.notFoundHint = opts.notFoundHint;
    const api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    const { group, version, plural, namespace } = opts;
    const labelSelector = opts.labelSelector || undefined; // '' = every object
    const listFn = async (): Promise<KubernetesListObject<T>> =>
      (namespace
        ? await api.listNamespacedCustomObject({ group, version, plural, namespace, labelSelector })
        : await api.listClusterCustomObject({
            group,
            version,
            plural,
            labelSelector,
          })) as KubernetesListObject<T>;
    this.informer = makeInformer<T>(opts.kubeConfig, resourcePath(this.ref), listFn, labelSelector);
    this.informer.on('add', (obj) => this.dispatch('add', obj));
    this.informer.on('update', (obj) => this.dispatch('update', obj));
    this.informer.on('delete', (obj) => this.dispatch('delete', obj));
    this.informer.on('error', (err: unknown) => this.onError(err));
  }

  /** Registers a handler for objects seen for the first time (including the initial LIST). */
  onAdd(fn: Handler<T>): void {
    this.handlers.add.push(fn);
  }

  /** Registers a handler for objects whose resourceVersion changed. */
  onUpdate(fn: Handler<T>): void {
    this.handlers.update.push(fn);
  }

  /** Registers a handler for deleted objects (the last known state). */
  onDelete(fn: Handler<T>): void {
    this.handlers.delete.push(fn);
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace || undefined);
  }

  list(): T[] {
    return [...this.informer.list()];
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Why the informer is failing right now, in a few words (e.g. `CustomResourceDefinition
   * patchpolicies.ecsops.io is not installed`, or an {@link errorSummary}); undefined while it runs.
   */
  lastError(): string | undefined {
    return this.failing?.problem;
  }

  /**
   * Starts LIST + WATCH. Resolves after the first attempt (synced or not: on failure the informer
   * keeps retrying in the background); use {@link waitForSync} to wait for the cache.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.attempt();
  }

  /**
   * Resolves once the initial LIST has been applied. Rejects with the signal's reason if `signal`
   * aborts first.
   */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        reject(signal?.reason as Error);
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.syncWaiters.push(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops the watch and any pending restart. The cache keeps its last content. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer.stop();
  }

  private async attempt(): Promise<void> {
    const errorsBefore = this.errors;
    try {
      await this.informer.start();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.errors !== errorsBefore || !this.running) return;
    this.delayMs = 0;
    if (this.failing) {
      const { count, logged } = this.failing;
      this.failing = undefined;
      // At info only when the failure was said above debug.
      this.log?.[logged ? 'info' : 'debug'](
        { resource: this.describe(), failures: count },
        'informer recovered',
      );
    }
    if (!this.synced) {
      this.synced = true;
      this.log?.debug({ resource: this.describe() }, 'informer synced');
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private onError(err: unknown): void {
    this.errors++;
    if (!this.running || this.restartTimer !== undefined) return;
    this.delayMs = this.delayMs === 0 ? this.baseDelayMs : Math.min(this.delayMs * 2, this.maxDelayMs);
    this.report(err);
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.running) void this.attempt();
    }, this.delayMs);
  }

  /** Logs one failure at the level its class and persistence call for (see the class comment). */
  private report(err: unknown): void {
    const now = this.clock.now();
    const error = errorSummary(err);
    const cls = classify(err);
    const { group, version, plural } = this.ref;
    const crd = `${plural}.${group}`;
    const problem = cls === 'notFound' ? `CustomResourceDefinition ${crd} is not installed` : error;
    const f = (this.failing ??= { since: now, count: 0, problem });
    f.count++;
    f.problem = problem;
    const msg = {
      notFound: `${problem} (the API server does not serve ${group}/${version} ${plural})${this.notFoundHint ? `: ${this.notFoundHint}` : ''}`,
      denied: `cannot list/watch ${crd}: access denied, check the controller's RBAC; restarting`,
      transient: 'informer stopped on error; restarting',
      other: 'informer stopped on error; restarting',
    }[cls];
    let level: 'debug' | 'warn' | 'error' =
      cls === 'notFound' || cls === 'denied'
        ? 'error'
        : cls === 'transient' && now - f.since < this.quietRetryMs
          ? 'debug'
          : 'warn';
    if (level !== 'debug') {
      const text = `${msg} ${error}`;
      if (f.logged?.text === text && now - f.logged.at < this.repeatLogIntervalMs) level = 'debug';
      else f.logged = { text, at: now };
    }
    this.log?.[level](
      {
        resource: this.describe(),
        error,
        failures: f.count,
        failingForMs: now - f.since,
        restartInMs: this.delayMs,
      },
      msg,
    );
  }

  private dispatch(kind: 'add' | 'update' | 'delete', obj: T): void {
    for (const fn of this.handlers[kind]) {
      try {
        fn(obj);
      } catch (err) {
        this.log?.error(
          { resource: this.describe(), error: sanitizeError(err) },
          `informer ${kind} handler threw`,
        );
      }
    }
  }

  private describe(): string {
    return `${this.ref.plural}.${this.ref.group}/${this.ref.version}${this.ref.namespace ? ` in ${this.ref.namespace}` : ''}`;
  }
}
