/**
 * The generic reconcile driver every kind runs on (DESIGN §3, Flux `reconcile` + `summarize`):
 *
 *   cache read (gone → forget) → freshest copy → deletion dispatch (suspended → finalizer removed
 *   without cloud writes) → finalizer → first status for a new generation → Stalled gate →
 *   ordered phases → one status write → error → conditions → rethrow → requeue.
 *
 * A kind supplies {@link KindHooks}: its scope, its phases, its deletion path and a pure status
 * derivation. The driver owns everything that must behave the same in every kind.
 *
 * Status writes: a new generation's `started` status (Ready=Unknown, Reconciling=True) is written
 * when its first reconcile outlasts {@link DriverOptions.firstStatusGraceMs}. After that, while
 * the object is in progress, a status write is coalesced when all of these hold: it tells a reader
 * of the summary nothing new (Ready becoming True, Reconciling or Stalled changing, an error); it
 * publishes no new instance lock (a started execution's `lockKeys`: other processes see holds
 * only there); the object's last write is younger than {@link DriverOptions.statusCoalesceMs};
 * its own requeue comes within that period. The status (rows, tracked executions) then stays in
 * memory; the next reconcile starts from it and writes it or a newer one. Progress of running
 * work is written about once per period instead of once per poll. A crash loses nothing the cloud
 * cannot tell again (executions are adopted by their owner tag). Events are not coalesced.
 */
import {
  FINALIZER,
  MAX_INTERVAL_MS,
  MIN_INTERVAL_MS,
  RECONCILE_REQUESTED_ANNOTATION,
} from '../../api/common.js';
import {
  AbortedReason,
  RECHECKED_STALLED_REASONS,
  WaitingForDisruptionBudgetReason,
} from '../../api/conditions.js';
import { DeleteAction, DeletedWhileSuspendedEvent, ReconcileAction } from '../../api/events.js';
import parseDuration from 'parse-duration';
import { getCondition, type Condition } from '../../runtime/conditions.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { ReconcileError, StalledError, TransientError } from '../../runtime/errors.js';
import { sanitizeError } from '../../runtime/sanitize.js';
import { jsonEqual } from '../../runtime/status.js';
import { QueuePriority } from '../../runtime/workqueue.js';
import { PRIORITY } from '../../cloud/limiter.js';
import type { ClientViewOptions } from '../../cloud/types.js';
import { toReconcileError } from './cloud-errors.js';
import { acquiresLocks } from './lock.js';
import { summarizeConditions, type Outcome, type ReasonMessage } from './conditions.js';
import type { KitDeps, Resource } from './deps.js';

/** Default drift-check period when `spec.interval` is unset, milliseconds. */
export const DEFAULT_INTERVAL_MS = 10 * 60_000;
/** Default slow re-check period of a permission / credential Stalled state, milliseconds. */
export const DEFAULT_STALLED_RECHECK_MS = 10 * 60_000;

/**
 * `spec.interval` in milliseconds, clamped to the admission bounds (10 s … 24 h) so an object
 * stored before the CEL rule existed cannot spin or overflow a timer. Unset or unparsable → 10 min.
 */
export function intervalMs(value: string | undefined): number {
  const ms = value ? parseDuration(value) : undefined;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return DEFAULT_INTERVAL_MS;
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, ms));
}

/** The common status fields the driver reads and writes. */
export interface CommonStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastHandledReconcileAt?: string;
}

/** What every kind's scope carries. */
export interface BaseScope<T extends Resource> {
  obj: T;
  ctx: ReconcileContext;
  now: Date;
  /** False while suspended (or in a kind's observe mode): no cloud writes. Computed once. */
  writesAllowed: boolean;
  /**
   * Options for this reconcile's cloud clients and fleet reads: the abort signal, the rate gate's
   * fairness owner (`Kind/namespace/name`) and, while a new generation or a requested reconcile
   * is handled, `minPriority: interactive` so the object's drift reads go ahead of other objects'
   * background drift checks (a spec change reaches its first write in seconds, not after them).
   */
  view: ClientViewOptions & { signal: AbortSignal; owner: string };
  /**
   * True while a new generation or a requested reconcile is handled: targets are then read fresh
   * (no shared tag listing or instance record older than this reconcile), so an object created
   * seconds after its instances were tagged sees them.
   */
  fresh?: boolean;
  /**
   * Writes the status derived from the scope so far, at once (never coalesced): the kit's start
   * path calls it between recording a start's intent and sending it (DESIGN §8.1). Set by the
   * driver.
   * @throws the status write's error (nothing is sent then).
   */
  recordIntent?: () => Promise<void>;
  /**
   * Set by the kit's start path when a disruption budget kept instances back (the message names
   * the budget and its usage): the driver reports Ready=False / Reconciling=True
   * `WaitingForDisruptionBudget` and requeues within {@link BUDGET_WAIT_REQUEUE_MS}.
   */
  budgetWait?: string;
}

/**
 * What the driver reads of a kind scope's `traffic` (spec.trafficControl, traffic.ts
 * `TrafficScope`), set by the kit: why a batch waits on its load balancers (`Draining`,
 * `WaitingForLoadBalancerHealth`, `WaitingForDrainCapacity`; reported like a budget wait, which
 * wins), when to look again, and the backends still to restore (deletion waits for them).
 */
function trafficOf(
  scope: object,
): { wait?: ReasonMessage; wakeAtMs?: number; backends?: readonly unknown[] } | undefined {
  return (scope as { traffic?: { wait?: ReasonMessage; wakeAtMs?: number; backends?: readonly unknown[] } })
    .traffic;
}

/** Longest requeue of a resource waiting for a disruption budget's headroom, milliseconds. */
export const BUDGET_WAIT_REQUEUE_MS = 5_000;

/**
 * The outcome with a disruption-budget wait folded in: a kind's verdict becomes Ready=False and
 * Reconciling=True with reason `WaitingForDisruptionBudget` and `wait` as the message; errors and
 * other outcomes are kept. Pure.
 */
export function withBudgetWait(outcome: Outcome, wait: string | ReasonMessage | undefined): Outcome {
  if (!wait || outcome.kind !== 'verdict') return outcome;
  const why = typeof wait === 'string' ? { reason: WaitingForDisruptionBudgetReason, message: wait } : wait;
  return {
    kind: 'verdict',
    verdict: { ...outcome.verdict, ready: { status: 'False', ...why }, reconciling: why },
  };
}

/** The status a kind derived, plus the per-state counts for `ecsops_resource_instances`. */
export interface DerivedStatus<S> {
  status: S;
  counts?: Record<string, number>;
  /**
   * Set by kinds that read per-instance state when this reconcile knows it (shared/freshness.ts):
   * `ecsops_state_oldest_read_age_seconds` (absent age: the series is removed).
   */
  freshness?: { oldestReadAgeSeconds?: number };
}

/** How a deletion step ended. */
export interface DeleteResult {
  /** True: cleanup finished, remove the finalizer. */
  done: boolean;
  /** When not done: reconcile again after this long (ms). */
  requeueAfterMs?: number;
}

/** What a kind plugs into the driver. */
export interface KindHooks<T extends Resource, Sc extends BaseScope<T>> {
  /** The kind, e.g. `EcsExtension` (metrics label). */
  readonly kind: string;
  /** Whether cloud writes are allowed for `obj` (false when suspended or observing). */
  writesAllowed(obj: T): boolean;
  /** Builds the reconcile's scope from the base (reads failure memory etc. from status). */
  newScope(base: BaseScope<T>): Sc;
  /** Ordered phases; each records facts on the scope; the first throw ends the reconcile. */
  readonly phases: ReadonlyArray<(scope: Sc) => Promise<void>>;
  /**
   * The kind's tracked-work step (`WorkKit.reconcile` plus the kind's fold of finished work). The
   * driver runs it BEFORE the phases (so a broken spec never strands results or holds, DESIGN
   * §8.5), on objects Stalled for their generation while they still track work, and first on the
   * deletion path, which waits while `inFlight(scope)` > 0 (§8.4: a hold ends when the cloud says
   * the work ended, not when the object goes away).
   */
  readonly work?: {
    reconcile(scope: Sc): Promise<void>;
    /** Items still in flight after {@link reconcile}. */
    inFlight(scope: Sc): number;
  };
  /** One step of the deletion path (the object is being deleted, holds the finalizer, not suspended). */
  reconcileDelete(scope: Sc): Promise<DeleteResult>;
  /**
   * Derives the status (pure apart from reading the scope). `error` is set when a phase threw;
   * the kind keeps what it could not re-derive (e.g. summary and rows) from the previous status.
   * The driver overwrites `conditions`, `observedGeneration` and `lastHandledReconcileAt`.
   */
  deriveStatus(
    scope: Sc,
    error: ReconcileError | undefined,
  ): DerivedStatus<NonNullable<T['status']>> & {
    outcome?: Outcome;
  };
  /** The lowest requeue the kind wants after a successful reconcile, milliseconds (jitter is added later). */
  requeueAfterMs(scope: Sc): number;
  /**
   * Drops in-process memory of a UID: caches after a failed reconcile (`gone` false), everything
   * including the process-local lock hold once the object is gone (`gone` true).
   */
  forget?(uid: string, gone: boolean): void;
  /**
   * Whether the driver holds objects of this kind with the `ecsops.io/cleanup` finalizer. Default
   * true; a kind with nothing to clean up in the cloud (MaintenanceWindow) sets false.
   */
  readonly finalizer?: boolean;
  /**
   * Stalled reasons of this kind that are re-checked like permission errors (every
   * `stalledRecheckMs`, and whenever the object is enqueued), because something other than the
   * object's own spec can resolve them (e.g. a referenced object being created).
   */
  readonly recheckedStalledReasons?: readonly string[];
}

/** Default of {@link DriverOptions.firstStatusGraceMs}, milliseconds. */
export const DEFAULT_FIRST_STATUS_GRACE_MS = 1_000;
/**
 * Default of {@link DriverOptions.statusCoalesceMs} (see the module comment), milliseconds: a
 * status that tells a reader nothing new is deferred when the object's last status write is
 * younger than this and its own requeue is at most this far away, so an object in progress is
 * written about once per this period.
 */
export const STATUS_COALESCE_MS = 5_000;

/** Options of {@link ReconcileDriver}. */
export interface DriverOptions {
  /** Slow re-check of PermissionDenied / InvalidCredentials Stalled states, ms. Default 10 min. */
  stalledRecheckMs?: number;
  /**
   * How long the first reconcile of a new generation may run before its `Ready=Unknown` /
   * `Reconciling=True` status is written on its own, milliseconds (default 1 s; 0 = before any
   * cloud call). A reconcile that ends sooner writes that generation's status once, so a small
   * resource converges in two status writes (work started, work done) instead of three.
   */
  firstStatusGraceMs?: number;
  /**
   * Status coalescing period, milliseconds (default {@link STATUS_COALESCE_MS}; 0 = write at the
   * end of every reconcile). See the module comment.
   */
  statusCoalesceMs?: number;
}

/** Runs one kind's reconciles; see the module comment. */
export class ReconcileDriver<T extends Resource, Sc extends BaseScope<T>> implements Reconciler {
  private readonly now: () => Date;
  private readonly uidByKey = new Map<string, string>();
  private readonly recheckMs: number;
  private readonly graceMs: number;
  private readonly coalesceMs: number;
  /**
   * Per UID, a status computed but not yet written (deferred to the object's next reconcile,
   * which starts from it and writes it, or a successor, as its diff against the API server's).
   */
  private readonly deferred = new Map<string, NonNullable<T['status']>>();
  /** Per UID, when this process last wrote the object's status (`performance.now()`, ms). */
  private readonly lastWriteAt = new Map<string, number>();

  constructor(
    private readonly hooks: KindHooks<T, Sc>,
    private readonly deps: KitDeps<T>,
    opts: DriverOptions = {},
  ) {
    this.now = deps.now ?? (() => new Date());
    this.recheckMs = opts.stalledRecheckMs ?? DEFAULT_STALLED_RECHECK_MS;
    this.graceMs = opts.firstStatusGraceMs ?? DEFAULT_FIRST_STATUS_GRACE_MS;
    this.coalesceMs = opts.statusCoalesceMs ?? STATUS_COALESCE_MS;
  }

  /** Reconciles one object by key; see the module comment. */
  async reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    const cached = this.deps.objects.get(req.namespace, req.name);
    if (!cached) {
      // Gone without (or after) the finalizer path: drop memory and metric series.
      const uid = this.uidByKey.get(key);
      if (uid !== undefined) this.forget(uid);
      this.uidByKey.delete(key);
      this.deps.metrics.deleteResource(this.hooks.kind, req.namespace, req.name);
      return {};
    }
    const uid = cached.metadata.uid ?? '';
    const previousUid = this.uidByKey.get(key);
    if (previousUid !== undefined && previousUid !== uid) this.forget(previousUid); // deleted and re-created
    this.uidByKey.set(key, uid);
    // A shallow copy: the driver records its own status writes on it, never on the shared cache object.
    const obj = { ...(this.deps.kube.freshest?.(cached) ?? cached) };
    // What the API server holds (writes diff against it); a deferred status is the starting point.
    const sink: StatusSink<T> = { onServer: obj.status };
    const deferred = this.deferred.get(uid);
    this.deferred.delete(uid);
    if (deferred !== undefined) obj.status = deferred;
    const now = this.now();

    if (obj.metadata.deletionTimestamp) {
      if (!obj.metadata.finalizers?.includes(FINALIZER)) return {};
      return this.reconcileDelete(obj, ctx, now, sink);
    }
    if (this.hooks.finalizer !== false && !obj.metadata.finalizers?.includes(FINALIZER))
      await this.deps.kube.addFinalizer(obj, FINALIZER);

    const generation = obj.metadata.generation ?? 0;
    const status = (obj.status ?? {}) as CommonStatus;
    const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
    const stalled = getCondition(status.conditions, 'Stalled');
    if (
      stalled?.status === 'True' &&
      stalled.observedGeneration === generation &&
      (requested === undefined || requested === status.lastHandledReconcileAt)
    ) {
      if (!this.rechecked(stalled.reason)) {
        if (this.hooks.work && tracksWork(status)) return this.pollStalled(obj, ctx, now, sink, stalled);
        ctx.log.debug({ reason: stalled.reason }, 'stalled for this generation; skipping');
        return {};
      }
      ctx.log.info({ reason: stalled.reason }, 're-checking a permission/credential Stalled state');
    }

    const changed =
      status.observedGeneration !== generation ||
      (requested !== undefined && requested !== status.lastHandledReconcileAt);
    const view = {
      signal: ctx.signal,
      owner: this.owner(obj),
      ...readPriority(status, changed),
    };

    // kstatus: a generation seen for the first time gets Ready=Unknown + Reconciling=True within
    // the grace (before any cloud call when it is 0), so a new object never reads as Current
    // while its first reads run; a reconcile that ends within the grace writes once.
    const first =
      status.observedGeneration !== generation ? this.firstStatus(obj, ctx, now, sink) : undefined;

    if (first && this.graceMs <= 0) await first.now();
    const scope = this.hooks.newScope({
      obj,
      ctx,
      now,
      writesAllowed: this.hooks.writesAllowed(obj),
      view,
      fresh: changed,
    });
    scope.recordIntent = async () => {
      await first?.settle(); // the intent write carries the first status's fields
      await this.finish(scope, sink);
    };
    const work = this.hooks.work;
    const phases = work ? [(sc: Sc) => work.reconcile(sc), ...this.hooks.phases] : this.hooks.phases;
    try {
      try {
        for (const [i, phase] of phases.entries()) {
          if (ctx.signal.aborted)
            throw new TransientError(AbortedReason, 'reconcile aborted (shutdown or lost leadership)');
          ctx.log.trace({ phase: i }, 'phase');
          await phase(scope);
        }
      } finally {
        await first?.settle(); // never two status writes of one reconcile in flight at once
      }
    } catch (err) {
      const rerr = err instanceof ReconcileError ? err : toReconcileError(err, 'reconcile');
      this.hooks.forget?.(uid, false); // caches only: holds follow the work, not errors
      if (ctx.signal.aborted) throw rerr; // no status write after shutdown / lost leadership
      await this.finish(scope, sink, rerr);
      if (rerr instanceof StalledError) {
        void this.deps.events.event(obj, 'Warning', rerr.reason, ReconcileAction, rerr.message);
        if (this.rechecked(rerr.reason)) {
          throw new StalledError(rerr.reason, rerr.message, {
            cause: rerr.cause,
            recheckAfterMs: this.recheckMs,
          });
        }
      }
      throw rerr;
    }
    const requeueAfterMs = Math.max(1, Math.round(this.requeueMs(scope)));
    const sinceWriteMs = performance.now() - (this.lastWriteAt.get(uid) ?? -Infinity);
    await this.finish(scope, sink, undefined, {
      deferrable: sinceWriteMs < this.coalesceMs && requeueAfterMs <= this.coalesceMs,
    });
    // Work still in flight (Reconciling=True) is polled ahead of other objects' drift checks.
    const reconciling = getCondition((obj.status as CommonStatus | undefined)?.conditions, 'Reconciling');
    return {
      requeueAfterMs,
      priority: reconciling?.status === 'True' ? QueuePriority.poll : QueuePriority.low,
    };
  }

  /**
   * The `started` status of a new generation (observedGeneration, Ready=Unknown,
   * Reconciling=True), written after the grace unless settled first. `now()` writes it at once;
   * `settle()` cancels a write not yet started and waits for one in flight. A failed write is
   * logged only: the reconcile's final write carries the same fields.
   */
  private firstStatus(
    obj: T,
    ctx: ReconcileContext,
    now: Date,
    sink: StatusSink<T>,
  ): { now(): Promise<void>; settle(): Promise<void> } {
    const status = (obj.status ?? {}) as CommonStatus;
    const generation = obj.metadata.generation ?? 0;
    const started = {
      ...status,
      observedGeneration: generation,
      conditions: summarizeConditions(status.conditions, generation, { kind: 'started' }, now),
    } as NonNullable<T['status']>;
    let inFlight: Promise<void> | undefined;
    const write = (): Promise<void> =>
      (inFlight ??= this.write(obj, started, ctx, sink).catch((err: unknown) => {
        ctx.log.warn({ error: sanitizeError(err) }, 'first status write failed; the final write follows');
      }));
    const timer = this.graceMs > 0 ? setTimeout(() => void write(), this.graceMs) : undefined;
    return {
      now: async () => {
        clearTimeout(timer);
        await write();
      },
      settle: async () => {
        clearTimeout(timer);
        await inFlight;
      },
    };
  }

  /**
   * Derives conditions and writes the status once (skipped by the writer when unchanged). With
   * `deferrable`, a status that tells a reader nothing new ({@link sameSummary}) and publishes no
   * lock acquisition ({@link acquiresLocks}) is kept in memory for the object's next reconcile
   * instead.
   */
  private async finish(
    scope: Sc,
    sink: StatusSink<T>,
    err?: ReconcileError,
    opts: { deferrable?: boolean } = {},
  ): Promise<void> {
    const { obj, now } = scope;
    const generation = obj.metadata.generation ?? 0;
    const derived = this.hooks.deriveStatus(scope, err);
    const status = { ...derived.status } as NonNullable<T['status']> & CommonStatus;
    const prev = (obj.status ?? {}) as CommonStatus;
    const outcome: Outcome =
      err instanceof StalledError
        ? { kind: 'stalled', error: reasonMessage(err) }
        : err
          ? { kind: 'retrying', error: reasonMessage(err) }
          : withBudgetWait(
              derived.outcome ?? { kind: 'started' },
              scope.budgetWait ?? trafficOf(scope)?.wait,
            );
    status.conditions = summarizeConditions(prev.conditions, generation, outcome, now);
    status.observedGeneration = generation;
    if (!(err instanceof TransientError)) {
      const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
      if (requested !== undefined) status.lastHandledReconcileAt = requested;
    }
    this.deps.metrics.setConditions(
      this.hooks.kind,
      obj.metadata.namespace ?? '',
      obj.metadata.name ?? '',
      status.conditions ?? [],
    );
    if (derived.counts && !(err instanceof StalledError)) {
      this.deps.metrics.setInstanceCounts(
        this.hooks.kind,
        obj.metadata.namespace ?? '',
        obj.metadata.name ?? '',
        derived.counts,
      );
    }
    this.deps.metrics.setDrainedBackends?.(
      this.hooks.kind,
      obj.metadata.namespace ?? '',
      obj.metadata.name ?? '',
      trafficOf(scope)?.backends?.length,
    );
    if (derived.freshness) {
      this.deps.metrics.setOldestReadAge?.(
        this.hooks.kind,
        obj.metadata.namespace ?? '',
        obj.metadata.name ?? '',
        derived.freshness.oldestReadAgeSeconds,
      );
    }
    if (
      opts.deferrable &&
      sameSummary(sink.onServer as CommonStatus | undefined, status) &&
      !acquiresLocks(sink.onServer, status)
    ) {
      scope.ctx.log.debug('status deferred to the next reconcile (still in progress)');
      this.deferred.set(obj.metadata.uid ?? '', status);
      obj.status = status;
      return;
    }
    await this.write(obj, status, scope.ctx, sink);
  }

  private async write(
    obj: T,
    status: NonNullable<T['status']>,
    ctx: ReconcileContext,
    sink: StatusSink<T>,
  ): Promise<void> {
    if (ctx.signal.aborted) return;
    const unchanged = jsonEqual(sink.onServer, status); // the writer skips it: not a write
    await this.deps.kube.patchStatus({ ...obj, status: sink.onServer }, status);
    obj.status = status;
    sink.onServer = status;
    if (!unchanged) this.lastWriteAt.set(obj.metadata.uid ?? '', performance.now());
  }

  /**
   * The deletion path: work in flight is waited out first (its results recorded, its hold kept
   * until the cloud says it ended), suspended or not; then a suspended object loses its finalizer
   * without cloud writes (Flux's convention) and says so in an Event; otherwise the kind's deletion
   * step runs until it reports done. A Stalled cause during deletion is retried (the object must
   * eventually go away).
   */
  private async reconcileDelete(
    obj: T,
    ctx: ReconcileContext,
    now: Date,
    sink: StatusSink<T>,
  ): Promise<ReconcileResult> {
    const done = async (): Promise<ReconcileResult> => {
      await this.deps.kube.removeFinalizer(obj, FINALIZER);
      this.forget(obj.metadata.uid ?? '');
      this.deps.metrics.deleteResource(
        this.hooks.kind,
        obj.metadata.namespace ?? '',
        obj.metadata.name ?? '',
      );
      return {};
    };
    const suspended = (obj.spec as { suspend?: boolean } | undefined)?.suspend === true;
    const work = this.hooks.work;
    if (suspended && !(work && tracksWork(obj.status))) return this.deletedWhileSuspended(obj, done);
    const scope = this.hooks.newScope({
      obj,
      ctx,
      now,
      writesAllowed: this.hooks.writesAllowed(obj),
      // Cleanup is a change the user asked for: its reads go ahead of drift checks.
      view: { signal: ctx.signal, owner: this.owner(obj), minPriority: PRIORITY.interactive },
    });
    scope.recordIntent = () => this.finish(scope, sink);
    let result: DeleteResult;
    try {
      if (work) await work.reconcile(scope);
      // Recorded drained backends are restored first (a safety write, even while suspended).
      if (work && (work.inFlight(scope) > 0 || (trafficOf(scope)?.backends?.length ?? 0) > 0))
        result = { done: false };
      else if (suspended) return this.deletedWhileSuspended(obj, done);
      else result = await this.hooks.reconcileDelete(scope);
    } catch (err) {
      let rerr = err instanceof ReconcileError ? err : toReconcileError(err, 'reconcile deletion');
      if (rerr instanceof StalledError) rerr = new TransientError(rerr.reason, rerr.message, { cause: rerr });
      if (!ctx.signal.aborted) await this.finish(scope, sink, rerr);
      throw rerr;
    }
    if (result.done) return done();
    await this.finish(scope, sink);
    return {
      requeueAfterMs: Math.max(1, Math.round(result.requeueAfterMs ?? this.requeueMs(scope))),
      priority: QueuePriority.poll,
    };
  }

  private deletedWhileSuspended(obj: T, done: () => Promise<ReconcileResult>): Promise<ReconcileResult> {
    void this.deps.events.event(
      obj,
      'Normal',
      DeletedWhileSuspendedEvent,
      DeleteAction,
      'deleted while suspended: finalizer removed without cleanup (no cloud writes while suspend is true)',
    );
    return done();
  }

  /**
   * An object Stalled for its generation that still tracks work: only the work step runs (no new
   * work: writes are off), its results and released holds are written with the Stalled condition
   * kept, and it is requeued at the poll delay while work remains.
   */
  private async pollStalled(
    obj: T,
    ctx: ReconcileContext,
    now: Date,
    sink: StatusSink<T>,
    stalled: Condition,
  ): Promise<ReconcileResult> {
    const work = this.hooks.work as NonNullable<KindHooks<T, Sc>['work']>;
    const scope = this.hooks.newScope({
      obj,
      ctx,
      now,
      writesAllowed: false,
      view: { signal: ctx.signal, owner: this.owner(obj) },
    });
    const held = new StalledError(stalled.reason, stalled.message);
    try {
      await work.reconcile(scope);
    } catch (err) {
      const rerr = err instanceof ReconcileError ? err : toReconcileError(err, 'poll of tracked work');
      ctx.log.warn({ error: sanitizeError(rerr) }, 'polling the tracked work of a Stalled object failed');
      if (!ctx.signal.aborted) await this.finish(scope, sink, held);
      throw rerr instanceof StalledError
        ? new TransientError(rerr.reason, rerr.message, { cause: rerr })
        : rerr;
    }
    if (!ctx.signal.aborted) await this.finish(scope, sink, held);
    if (work.inFlight(scope) === 0 && (trafficOf(scope)?.backends?.length ?? 0) === 0) return {};
    return {
      requeueAfterMs: Math.max(1, Math.round(this.requeueMs(scope))),
      priority: QueuePriority.poll,
    };
  }

  /** The kind's requeue, at most {@link BUDGET_WAIT_REQUEUE_MS} while a disruption budget holds a start back. */
  private requeueMs(scope: Sc): number {
    let ms = this.hooks.requeueAfterMs(scope);
    const wake = trafficOf(scope)?.wakeAtMs;
    if (wake !== undefined) ms = Math.min(ms, Math.max(500, wake - scope.now.getTime()));
    return scope.budgetWait ? Math.min(ms, BUDGET_WAIT_REQUEUE_MS) : ms;
  }

  /** The rate gate's fairness owner of `obj`: `Kind/namespace/name`. */
  private owner(obj: T): string {
    return `${this.hooks.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
  }

  /** True when a Stalled `reason` is re-checked on a slow period (see {@link KindHooks.recheckedStalledReasons}). */
  private rechecked(reason: string): boolean {
    return (
      RECHECKED_STALLED_REASONS.includes(reason) ||
      (this.hooks.recheckedStalledReasons ?? []).includes(reason)
    );
  }

  private forget(uid: string): void {
    this.deferred.delete(uid);
    this.lastWriteAt.delete(uid);
    this.hooks.forget?.(uid, true);
    this.deps.kube.forget?.(uid);
  }
}

/** True when `status.executions` lists work in flight. */
function tracksWork(status: unknown): boolean {
  const s = status as { executions?: unknown[]; trafficControl?: { backends?: unknown[] } } | undefined;
  return (s?.executions?.length ?? 0) > 0 || (s?.trafficControl?.backends?.length ?? 0) > 0;
}

/** The status the API server holds for the object being reconciled (updated by every write). */
interface StatusSink<T extends Resource> {
  onServer: T['status'] | undefined;
}

/**
 * True when `next` tells a reader of the summary (kstatus, Argo CD health, `kubectl wait
 * --for=condition=Ready`) nothing new against `onServer`: same observedGeneration, Ready True in
 * both or in neither (Unknown → False while Reconciling=True is still InProgress), same
 * Reconciling and Stalled statuses.
 */
function sameSummary(onServer: CommonStatus | undefined, next: CommonStatus): boolean {
  if (!onServer || onServer.observedGeneration !== next.observedGeneration) return false;
  const status = (s: CommonStatus, t: string) => getCondition(s.conditions, t)?.status;
  return (
    (status(onServer, 'Ready') === 'True') === (status(next, 'Ready') === 'True') &&
    status(onServer, 'Reconciling') === status(next, 'Reconciling') &&
    status(onServer, 'Stalled') === status(next, 'Stalled')
  );
}

function reasonMessage(err: ReconcileError): ReasonMessage {
  return { reason: err.reason, message: err.message };
}

/**
 * The lowest rate-gate priority of a reconcile's cloud reads (limiter.ts `PRIORITY`): interactive
 * for a new generation or a requested reconcile (`changed`) and for an object whose work is in
 * flight (`Reconciling=True`: its results are folded now, and an instance they leave unknown is
 * re-read to judge it); otherwise none, so drift reads stay background. Without the second rule a
 * poll's re-read waited behind every other resource's first reads while holding a poll worker
 * (minutes in the daemon benchmark).
 */
export function readPriority(status: CommonStatus, changed: boolean): { minPriority?: number } {
  const working = getCondition(status.conditions, 'Reconciling')?.status === 'True';
  return changed || working ? { minPriority: PRIORITY.interactive } : {};
}
