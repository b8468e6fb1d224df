/**
 * The controller manager: informers → workqueues → workers, gated by Lease leader election, with a
 * graceful SIGTERM path. Mirrors controller-runtime's `manager` + `controller` split: caches run on
 * every replica (so standbys are warm and ready), workers only on the leader.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { realClock, sleep } from './clock.js';
import type { Clock } from './clock.js';
import { Controller } from './controller.js';
import type { Reconciler } from './controller.js';
import { CustomResourceInformer, objectKey } from './informer.js';
import type { InformerCache, InformerEvents } from './informer.js';
import { LeaderElector } from './leader-election.js';
import { controllerRuntimeMetrics } from './metrics.js';
import { QueuePriority, Workqueue } from './workqueue.js';
import type { RateLimiter, RateLimiterOptions } from './workqueue.js';

export type { ReconcileContext, ReconcileRequest, ReconcileResult, Reconciler } from './controller.js';
export type { InformerCache, InformerEvents } from './informer.js';

/** How long aborted reconciles get to return before the manager moves on, milliseconds. */
const ABORT_GRACE_MS = 5_000;

/** One controller: which custom resource it watches and who reconciles it. */
export interface ControllerSpec<T extends KubernetesObject = KubernetesObject> {
  /** Controller name, lower case (e.g. `ecsextension`): metric label, log field, queue name. */
  name: string;
  group: string;
  version: string;
  plural: string;
  kind: string;
  /** Namespace to watch; undefined = all namespaces. */
  namespace?: string;
  /** Concurrent reconciles (controller-runtime `MaxConcurrentReconciles`), ≥ 1. */
  workers: number;
  reconciler: Reconciler;
  /** Per-key backoff / bucket (default controller-runtime's 5 ms → 1000 s, 10 qps / 100 burst). */
  rateLimiter?: RateLimiter | RateLimiterOptions;
  /** Label selector for the informer. */
  labelSelector?: string;
  /**
   * Filters update events (controller-runtime predicates): `prev` is the last object this
   * controller saw for the key (undefined if none). Default: every update enqueues. Adds and
   * deletes always enqueue. See {@link generationChangedPredicate}.
   */
  updatePredicate?: (prev: T | undefined, next: T) => boolean;
}

/** Leader election settings; durations in milliseconds (defaults 15 000 / 10 000 / 2 000). */
export interface ManagerLeaderElection {
  namespace: string;
  /** Lease name, e.g. `ecsops-controller-leader`. */
  name: string;
  /** Holder identity (default `<hostname>_<uuid>`, like controller-runtime). */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** Dependencies of {@link Manager}. */
export interface ManagerDeps {
  kubeConfig: KubeConfig;
  /** Private registry for the controller-runtime metric families. */
  registry: Registry;
  logger: Logger;
  /** Omit to run workers without election (single replica, tests). */
  leaderElection?: ManagerLeaderElection;
  clock?: Clock;
  /**
   * Called once when this replica loses leadership after having led (renew deadline passed or
   * Lease taken). Workers are already stopped; main.ts should exit non-zero (another replica may
   * already be reconciling). Not called on a {@link Manager.stop}.
   */
  onLeadershipLost?: () => void;
  /** Random source in [0, 1) for jitter (default Math.random). */
  random?: () => number;
  /**
   * Label selector every controller's informer watches with unless its spec sets one: the shard
   * of this process (Flux's `--watch-label-selector`), e.g. `sharding.ecsops.io/key in (shard1)`.
   */
  labelSelector?: string;
  /**
   * What an admin can do when a controller's resource is not served (its CRD is not installed),
   * appended to the informer's error line: how to install the CRD, how to leave the controller out.
   */
  missingCrdHint?: (controller: string) => string;
}

/** A watch-only cache (no workqueue, no reconciler): see {@link Manager.addCache}. */
export interface CacheSpec {
  /** Cache name, lower case (log field, `/readyz` detail), unique among controllers and caches. */
  name: string;
  group: string;
  version: string;
  plural: string;
  /** Namespace to watch; undefined = all namespaces. */
  namespace?: string;
  /** Label selector of LIST and WATCH; `''` = every object, whatever the manager's shard selector. */
  labelSelector: string;
}

/** What {@link Manager.addController} returns. */
export interface ControllerHandle<T> {
  /** The informer cache (reconcilers read objects from it) and its events. */
  cache: InformerCache<T> & InformerEvents<T>;
  /** The controller's workqueue (e.g. to enqueue keys from other watches). */
  queue: Workqueue;
}

/**
 * A `prev → next` update predicate that enqueues only when `metadata.generation` changed, the
 * deletionTimestamp changed, a finalizer was removed, or one of `annotations` changed (Flux
 * `GenerationChangedPredicate` OR `ReconcileRequestedPredicate`). Status-only writes are skipped.
 */
export function generationChangedPredicate(
  annotations: readonly string[] = [],
): (prev: KubernetesObject | undefined, next: KubernetesObject) => boolean {
  return (prev, next) => {
    if (!prev) return true;
    const a = prev.metadata ?? {};
    const b = next.metadata ?? {};
    if (a.generation !== b.generation) return true;
    if (String(a.deletionTimestamp ?? '') !== String(b.deletionTimestamp ?? '')) return true;
    // A finalizer added (by this controller, right before its first status write) needs no second
    // reconcile; one removed (perhaps ours, by someone else) does.
    const after = new Set(b.finalizers ?? []);
    if ((a.finalizers ?? []).some((f) => !after.has(f))) return true;
    return annotations.some((k) => a.annotations?.[k] !== b.annotations?.[k]);
  };
}

interface Entry {
  spec: ControllerSpec<KubernetesObject>;
  informer: CustomResourceInformer<KubernetesObject>;
  queue: Workqueue;
  controller: Controller | undefined;
}

/**
 * Runs controllers. Lifecycle: `addController()`… → `start()` (informers synced, then workers — only
 * while leader when leader election is configured) → `stop(deadlineMs)` on SIGTERM.
 */
export class Manager {
  private readonly deps: ManagerDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly entries: Entry[] = [];
  private readonly caches: Array<{ name: string; informer: CustomResourceInformer<KubernetesObject> }> = [];
  private elector: LeaderElector | undefined;
  private electorRun: Promise<void> | undefined;
  private readonly electionAbort = new AbortController();
  private started = false;
  private stopping = false;
  private workersRunning = false;

  constructor(deps: ManagerDeps) {
    this.deps = deps;
    this.clock = deps.clock ?? realClock;
    this.log = deps.logger;
  }

  /**
   * Registers a controller: builds its informer (handlers only enqueue `namespace/name`) and its
   * workqueue. Must be called before {@link start}.
   * @throws Error after start, or when the name is already used.
   */
  addController<T extends KubernetesObject>(spec: ControllerSpec<T>): ControllerHandle<T> {
    if (this.started) throw new Error('addController must be called before start');
    if (this.entries.some((e) => e.spec.name === spec.name))
      throw new Error(`controller ${spec.name} already added`);
    const metrics = controllerRuntimeMetrics(this.deps.registry);
    const queue = new Workqueue({
      name: spec.name,
      clock: this.clock,
      metrics: metrics.workqueue,
      ...(spec.rateLimiter ? { rateLimiter: spec.rateLimiter } : {}),
    });
    const informer = this.newInformer<T>(
      { ...spec, labelSelector: spec.labelSelector ?? this.deps.labelSelector },
      { controller: spec.name },
    );
    const seen = new Map<string, T>();
    informer.onAdd((obj) => {
      const key = objectKey(obj);
      seen.set(key, obj);
      // The initial list (and a re-list after a lost watch) goes behind changes and running work.
      queue.add(key, informer.hasSynced() ? QueuePriority.change : QueuePriority.low);
    });
    informer.onUpdate((obj) => {
      const key = objectKey(obj);
      const prev = seen.get(key);
      seen.set(key, obj);
      if (!spec.updatePredicate || spec.updatePredicate(prev, obj)) queue.add(key, QueuePriority.change);
    });
    informer.onDelete((obj) => {
      const key = objectKey(obj);
      seen.delete(key);
      queue.add(key, QueuePriority.change);
    });
    this.entries.push({
      spec: spec as unknown as ControllerSpec<KubernetesObject>,
      informer: informer as unknown as CustomResourceInformer<KubernetesObject>,
      queue,
      controller: undefined,
    });
    return { cache: informer, queue };
  }

  /**
   * Adds a watch-only informer cache, started, synced and stopped with the controllers' informers
   * and part of {@link ready} / {@link readyz}. Used where a process must SEE objects it does not
   * reconcile: with `--watch-label-selector`, every shard reads every resource's instance holds
   * (ADR 0008). The returned informer also takes `onAdd` / `onUpdate` / `onDelete` handlers.
   * @throws Error after start, or when the name is already used.
   */
  addCache<T extends KubernetesObject>(spec: CacheSpec): CustomResourceInformer<T> {
    if (this.started) throw new Error('addCache must be called before start');
    if (this.entries.some((e) => e.spec.name === spec.name) || this.caches.some((c) => c.name === spec.name))
      throw new Error(`cache ${spec.name} already added`);
    const informer = this.newInformer<T>(spec, { cache: spec.name });
    this.caches.push({
      name: spec.name,
      informer: informer as unknown as CustomResourceInformer<KubernetesObject>,
    });
    return informer;
  }

  /** The shard label selector every controller's informer uses by default (`''` when unsharded). */
  shardSelector(): string {
    return this.deps.labelSelector ?? '';
  }

  /**
   * Starts informers and waits until every cache has synced, then starts workers — at once without
   * leader election, or when the Lease is acquired (election runs in the background). Resolves
   * once caches are synced and election (or the workers) has been started.
   * @throws the signal's reason if `signal` aborts before the caches sync; Error if called twice.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) throw new Error('manager already started');
    this.started = true;
    const informers = [...this.entries.map((e) => e.informer), ...this.caches.map((c) => c.informer)];
    await Promise.all(informers.map((i) => i.start()));
    await Promise.all(informers.map((i) => i.waitForSync(signal)));
    this.log.info({ controllers: this.entries.map((e) => e.spec.name) }, 'caches synced');
    const le = this.deps.leaderElection;
    if (!le) {
      this.startWorkers();
      return;
    }
    this.elector = new LeaderElector({
      kubeConfig: this.deps.kubeConfig,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity ?? `${hostname()}_${randomUUID()}`,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      clock: this.clock,
      logger: this.log,
      registry: this.deps.registry,
      ...(this.deps.random ? { random: this.deps.random } : {}),
      callbacks: {
        onStartedLeading: () => this.startWorkers(),
        onStoppedLeading: () => this.onStoppedLeading(),
      },
    });
    this.electorRun = this.elector.run(this.electionAbort.signal);
  }

  /** True once every informer has synced (readiness: standbys are ready too). */
  ready(): boolean {
    return (
      this.entries.every((e) => e.informer.hasSynced()) && this.caches.every((c) => c.informer.hasSynced())
    );
  }

  /** The names of the registered controllers, in registration order. */
  controllers(): string[] {
    return this.entries.map((e) => e.spec.name);
  }

  /**
   * Readiness for `/readyz`: which caches have not synced yet, if any, each with why its informer is
   * failing when it is (e.g. `patchpolicy (CustomResourceDefinition patchpolicies.ecsops.io is not
   * installed)`).
   */
  readyz(): { ok: boolean; detail: string } {
    const pending = [
      ...this.entries.map((e) => ({ name: e.spec.name, informer: e.informer })),
      ...this.caches,
    ]
      .filter((c) => !c.informer.hasSynced())
      .map((c) => {
        const why = c.informer.lastError();
        return why ? `${c.name} (${why})` : c.name;
      });
    return pending.length === 0
      ? { ok: true, detail: '' }
      : { ok: false, detail: `caches not synced: ${pending.join(', ')}` };
  }

  /** True when workers are running (leader, or no leader election). */
  isLeader(): boolean {
    return this.workersRunning;
  }

  /**
   * Graceful stop (SIGTERM): stops intake, waits up to `deadlineMs` milliseconds for in-flight
   * reconciles, then aborts their signal; releases the Lease (so a successor takes over at once)
   * and stops the informers. Never throws.
   */
  async stop(deadlineMs = 30_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ deadlineMs }, 'stopping manager');
    await this.stopWorkers(deadlineMs);
    this.electionAbort.abort(new Error('manager stopping'));
    await this.electorRun;
    await Promise.all([...this.entries, ...this.caches].map((e) => e.informer.stop()));
    this.log.info('manager stopped');
  }

  /** An informer of `ref` with this manager's kubeconfig, clock and CRD hint; `logFields` name it in logs. */
  private newInformer<T extends KubernetesObject>(
    ref: {
      name: string;
      group: string;
      version: string;
      plural: string;
      namespace?: string;
      labelSelector?: string;
    },
    logFields: Record<string, string>,
  ): CustomResourceInformer<T> {
    return new CustomResourceInformer<T>({
      kubeConfig: this.deps.kubeConfig,
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      namespace: ref.namespace,
      labelSelector: ref.labelSelector,
      logger: this.log.child(logFields),
      clock: this.clock,
      ...(this.deps.missingCrdHint ? { notFoundHint: this.deps.missingCrdHint(ref.name) } : {}),
    });
  }

  private startWorkers(): void {
    if (this.stopping || this.workersRunning) return;
    this.workersRunning = true;
    const metrics = controllerRuntimeMetrics(this.deps.registry);
    for (const e of this.entries) {
      e.controller = new Controller({
        name: e.spec.name,
        queue: e.queue,
        reconciler: e.spec.reconciler,
        workers: e.spec.workers,
        logger: this.log,
        metrics,
        ...(this.deps.random ? { random: this.deps.random } : {}),
      });
      e.controller.start();
    }
    this.log.info('workers started');
  }

  private async stopWorkers(deadlineMs: number): Promise<void> {
    const controllers = this.entries.map((e) => e.controller);
    for (const e of this.entries) if (!e.controller) e.queue.shutDown();
    const running = controllers.filter((c): c is Controller => c !== undefined);
    if (running.length === 0) {
      this.workersRunning = false;
      return;
    }
    const drained = Promise.all(running.map((c) => c.stop())).then(() => true);
    const timeout = new AbortController();
    const timedOut = sleep(this.clock, deadlineMs, timeout.signal).then(
      () => false,
      () => false,
    );
    const inTime = await Promise.race([drained, timedOut]);
    timeout.abort();
    if (!inTime) {
      this.log.warn({ deadlineMs }, 'in-flight reconciles did not finish before the deadline; aborting them');
      for (const c of running) c.abortInFlight('shutdown deadline passed');
      // Aborted reconciles stop their cloud calls at once; wait for them (bounded) so the Lease is
      // released only after no reconcile can still write to the cloud.
      const grace = new AbortController();
      const stopped = await Promise.race([
        drained,
        sleep(this.clock, ABORT_GRACE_MS, grace.signal).then(
          () => false,
          () => false,
        ),
      ]);
      grace.abort();
      if (!stopped) this.log.error({ graceMs: ABORT_GRACE_MS }, 'reconciles still running after abort');
    }
    this.workersRunning = false;
  }

  private onStoppedLeading(): void {
    if (this.stopping) return;
    this.log.error('leadership lost; stopping workers');
    void this.stopWorkers(0).then(() => {
      for (const e of this.entries) e.controller?.abortInFlight('leadership lost');
      this.deps.onLeadershipLost?.();
    });
  }
}
