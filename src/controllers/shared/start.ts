/**
 * The one way every kind acts on instances (DESIGN §3, §8; ADR 0004): {@link WorkKit.start}
 * starts work and {@link WorkKit.reconcile} follows it. Every start, of every kind and every
 * deletion path, goes through the same steps in this order:
 *
 * 1. **Lock**: the cross-kind per-instance lock is checked and, for what is free, held — in one
 *    synchronous turn, so no other reconcile of this process can pass the check in between.
 *    In the same turn, every disruption budget (InstanceDisruptionBudget) that selects a free
 *    instance is consulted (budget.ts `admitStarts`): only what keeps every budget within its
 *    allowed count starts (so an execution is sized to the headroom: batches are cut after
 *    admission); the rest waits (`scope.budgetWait`: `WaitingForDisruptionBudget`, requeued), and a
 *    start no budget change short of the spec can ever admit throws Stalled `BudgetUnsatisfiable`.
 * 2. **Intent**: each batch becomes a *pending* work item (ClientToken, batch, lock keys, no ID
 *    yet) in the scope's `inFlight`, and the driver writes the status that records it
 *    (`status.executions[]` with `pending: true`) BEFORE the call. Another process (the next
 *    leader) sees the hold; a crash or a lost answer leaves the intent to resolve.
 * 3. **Call**: the tracker sends one batch (OOS `StartExecution` / ECS `RunCommand`). An answer
 *    turns the item into started work (ID, Event, metric). A failed call leaves its item pending
 *    (the call may have acted); batches after it are never sent and are dropped in `finally`.
 * 4. **Confirm**: the next reconcile resolves pending items before anything else: for the same
 *    generation, with writes allowed, it re-sends the batch with the SAME ClientToken (OOS and
 *    Cloud Assistant answer with the work the lost attempt started, or start it now); otherwise it
 *    drops them and adopts what the owner tag lists. Then it polls. Work leaves `inFlight` (and
 *    its hold ends) only when the cloud reports it ended.
 */
import { BudgetUnsatisfiableReason } from '../../api/conditions.js';
import { ExecutionStartedEvent, StartExecutionAction } from '../../api/events.js';
import { StalledError } from '../../runtime/errors.js';
import { toMetaTime } from '../../runtime/conditions.js';
import type { ReconcileContext } from '../../runtime/controller.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { chunks } from '../../util/chunks.js';
import { admissionMessage, admitStarts, heldKeysOf } from './budget.js';
import type { Resource } from './deps.js';
import { clientToken } from './execution.js';
import { instanceLockKey, type InstanceLock, type LockCheck } from './lock.js';
import {
  reservationsOf,
  TRAFFIC_RECHECK_MS,
  TrafficControl,
  type GroupReads,
  type TrafficScope,
} from './traffic.js';
import { WaitingForDrainCapacityReason } from '../../api/conditions.js';
import {
  ownerOf,
  trackedIds,
  type PollResult,
  type StartRequest,
  type WorkItem,
  type WorkTracker,
} from './work.js';

/** What the kit needs of a kind's reconcile scope. */
export interface WorkScope {
  obj: Resource;
  ctx: ReconcileContext;
  now: Date;
  writesAllowed: boolean;
  tracker: WorkTracker;
  /** Work in flight: started, pending (intent recorded, no ID yet) and adopted. */
  inFlight: WorkItem[];
  /**
   * Writes the status derived so far, now (the driver's intent write). Absent in unit tests that
   * build a scope by hand: the intent then reaches status with the reconcile's final write.
   * @throws ReconcileError when the write failed (nothing is sent then).
   */
  recordIntent?: () => Promise<void>;
  /**
   * Set by {@link WorkKit.start} when a disruption budget kept instances back: the message (names
   * the budget and its usage). The driver then reports `WaitingForDisruptionBudget` and requeues
   * soon.
   */
  budgetWait?: string;
  /**
   * spec.trafficControl of the resource (traffic.ts), or its recorded backends to restore when the
   * spec dropped it; absent when neither.
   */
  traffic?: TrafficScope;
}

/** What {@link WorkKit.start} did. */
export interface StartOutcome {
  /** Work the cloud answered for (with IDs). */
  started: WorkItem[];
  /** Instances another resource holds (not started). */
  held: LockCheck['held'];
  /**
   * spec.trafficControl: batches recorded and being taken out of rotation (pending, `Draining`);
   * the kit sends them once drained (see {@link WorkKit.reconcile}).
   */
  draining: WorkItem[];
}

/** Options of {@link WorkKit}. */
export interface WorkKitOptions {
  /** The process's cross-kind per-instance lock (absent when a kind runs alone in tests). */
  lock?: InstanceLock;
  /** Whether work of `action` takes the per-instance lock (default: every action). */
  locking?: (action: string) => boolean;
}

/** One kind's start path and tracked-work step; see the module comment. */
export class WorkKit {
  private readonly traffic: TrafficControl;

  constructor(private readonly opts: WorkKitOptions = {}) {
    // The capacity guard's reservations are shared by every kit of the process (same lock).
    this.traffic = new TrafficControl(opts.lock ? reservationsOf(opts.lock) : undefined);
  }

  /** Whether work of `action` takes the per-instance lock. */
  locks(action: string): boolean {
    return this.opts.locking?.(action) ?? true;
  }

  /**
   * Starts `req` (see the module comment): lock check and hold, intent recorded, one call per
   * batch (sorted, ≤ `tracker.batchSize`), `inFlight` kept true in `finally`.
   * With `allOrNothing`, nothing starts when any instance is held by another resource; with
   * `limit`, at most that many of the free instances start, taken in `req.instanceIds` order;
   * `onIntent` runs with the pending items before the intent write (a kind records its own
   * bookkeeping of the start there, e.g. a batch row, so the same write carries it).
   * @returns what started and what another resource holds.
   * @throws ReconcileError from the intent write (nothing sent) or from a call (its item stays
   *   pending; earlier batches stay started).
   * @throws StalledError `BudgetUnsatisfiable` when a disruption budget admits nothing and never
   *   can (maxUnavailable resolves to 0 for the instances, or an all-or-nothing start is larger
   *   than it allows); nothing is sent then.
   */
  async start(
    s: WorkScope,
    req: StartRequest,
    opts: { allOrNothing?: boolean; limit?: number; onIntent?: (items: readonly WorkItem[]) => void } = {},
  ): Promise<StartOutcome> {
    const t = s.traffic?.spec && s.traffic.drains(req.action) ? s.traffic : undefined;
    // Read before the synchronous lock section (the capacity guard judges on it).
    const reads: GroupReads | undefined = t
      ? await this.traffic.read(t, { health: true, scope: 'start' })
      : undefined;
    let free = [...new Set(req.instanceIds)];
    let held: LockCheck['held'] = [];
    const lock = this.locks(req.action) ? this.opts.lock : undefined;
    const check = lock?.check(s.obj, free);
    if (check) ({ free, held } = check);
    const budgets = lock?.budgets?.views() ?? [];
    if (lock && check && budgets.length > 0 && free.length > 0) {
      // Held by anyone, the owner included (a budget counts its own holds too).
      const keys = { has: (key: string) => check.others.has(key) || check.own.has(key) };
      const admission = admitStarts(free, budgets, (id) => keys.has(instanceLockKey(id)), {
        ...(opts.allOrNothing ? { allOrNothing: true } : {}),
        ...(opts.limit !== undefined ? { limit: Math.max(0, opts.limit) } : {}),
      });
      free = admission.admitted;
      // Woken when a hold on an instance of a full budget ends (the lock's waiter list).
      if (admission.waitingOn) lock.wait(s.obj, heldKeysOf(budgets, admission.waitingOn, keys));
      const message = admissionMessage(admission);
      if (message) s.budgetWait = s.budgetWait ? `${s.budgetWait}; ${message}` : message;
      if (free.length === 0 && admission.unsatisfiable > 0 && admission.waiting === 0)
        throw new StalledError(BudgetUnsatisfiableReason, message ?? 'a disruption budget can never admit');
    }
    if (opts.limit !== undefined) free = free.slice(0, Math.max(0, opts.limit));
    if (free.length === 0 || (opts.allOrNothing && held.length > 0))
      return { started: [], held, draining: [] };
    if (t && reads) {
      // The capacity guard cuts even an all-or-nothing start: the rest follows in later starts.
      const guard = this.traffic.admit(t, reads, free);
      free = guard.admitted;
      // A start cut to fit goes on (the rest follows in later starts); only one that admits nothing waits.
      if (free.length === 0) {
        if (guard.waiting) t.wait = { reason: WaitingForDrainCapacityReason, message: guard.waiting };
        t.wakeAtMs = Math.min(t.wakeAtMs ?? Infinity, s.now.getTime() + 2 * TRAFFIC_RECHECK_MS);
        return { started: [], held, draining: [] };
      }
    }
    const o = ownerOf(s.obj);
    const items: WorkItem[] = chunks(free.sort(), s.tracker.batchSize).map((batch) => ({
      executionId: '',
      pending: true,
      generation: o.generation,
      action: req.action,
      round: req.round,
      instanceIds: batch,
      clientToken: clientToken({
        uid: o.uid,
        generation: o.generation,
        ...(req.tokenScope !== undefined ? { scope: req.tokenScope } : {}),
        sequence: req.round,
        action: req.action,
        instanceIds: batch,
      }),
      startTime: toMetaTime(s.now),
    }));
    if (t && reads) {
      // Originals first, in the intent write; the batch is sent once drained (reconcile).
      for (const item of items)
        if (this.traffic.record(t, reads, item.instanceIds, s.now)) item.trafficPhase = 'Draining';
    }
    s.inFlight.push(...items);
    this.hold(s); // same synchronous turn as the check
    let sent = 0;
    const started: WorkItem[] = [];
    const draining: WorkItem[] = [];
    try {
      opts.onIntent?.(items);
      await s.recordIntent?.();
      for (const item of items) {
        if (t && item.trafficPhase === 'Draining') {
          sent += 1;
          draining.push(item);
          await this.traffic.drainStep(t, s.obj, s.tracker.reporting, item, s.now);
          continue;
        }
        sent += 1;
        await this.send(s, item, req.describe);
        started.push(item);
      }
    } finally {
      // Batches never sent are not intents any more; the one that failed stays pending.
      const unsent = new Set(items.slice(sent));
      if (unsent.size > 0) {
        s.inFlight = s.inFlight.filter((w) => !unsent.has(w));
        this.traffic.unreserve([...unsent].flatMap((w) => w.instanceIds));
        this.hold(s);
      }
    }
    return { started, held, draining };
  }

  /**
   * The tracked-work step every kind runs first (driver: before judging the spec, on Stalled
   * objects and on the deletion path): resolves pending starts, adopts untracked work when nothing
   * is tracked and writes are allowed, polls, and keeps the process-local hold equal to what is
   * still in flight. The kind folds the returned finished work.
   * @throws ReconcileError from the cloud reads or a re-send.
   */
  async reconcile(s: WorkScope): Promise<PollResult> {
    const lost = await this.resolvePending(s);
    if (lost || (s.inFlight.length === 0 && s.writesAllowed)) {
      const adopted = await s.tracker.adopt(s.obj, trackedIds(s.obj), s.now, { force: lost });
      for (const w of adopted) {
        s.ctx.log.info(
          { executionId: w.executionId, action: w.action },
          'adopted work owned by this resource',
        );
      }
      s.inFlight.push(...adopted);
    }
    this.hold(s);
    const t = s.traffic;
    if (s.inFlight.length === 0 && !(t && t.backends.length > 0))
      return { running: [], finished: [], vanished: [] };
    // Not polled: starts still draining, and ended work held back for its load balancer health.
    const waiting = s.inFlight.filter((w) => w.pending || (w.trafficPhase === 'Restoring' && w.finished));
    const polled = s.inFlight.filter((w) => !waiting.includes(w));
    const res: PollResult =
      polled.length > 0 ? await s.tracker.poll(s.obj, polled) : { running: [], finished: [], vanished: [] };
    for (const w of res.vanished) {
      s.ctx.log.warn(
        { executionId: w.executionId },
        'tracked work no longer listed by the cloud; dropping it',
      );
    }
    s.inFlight = [...waiting, ...res.running];
    let finished = res.finished;
    if (t) {
      try {
        ({ inFlight: s.inFlight, finished } = await this.traffic.afterPoll(
          t,
          s.obj,
          s.tracker.reporting,
          s.inFlight,
          res.finished,
          s.now,
        ));
      } finally {
        this.hold(s);
      }
    } else this.hold(s);
    return { ...res, finished };
  }

  /**
   * Holds (process-locally) the instances of every locking item in flight, and every instance
   * with a backend still out of rotation (spec.trafficControl: held until restored); an empty
   * list releases.
   */
  hold(s: WorkScope): void {
    this.opts.lock?.hold(s.obj, [
      ...s.inFlight.filter((w) => this.locks(w.action)).flatMap((w) => w.instanceIds),
      ...(s.traffic?.backends ?? []).map((b) => b.instanceId),
    ]);
  }

  /**
   * Pending starts: re-sent with their own ClientToken when their generation is current and writes
   * are allowed (the cloud answers with what the lost attempt started, or starts it now); dropped
   * otherwise.
   * @returns true when some were dropped (the caller then adopts from a fresh listing).
   */
  private async resolvePending(s: WorkScope): Promise<boolean> {
    const pending = s.inFlight.filter((w) => w.pending);
    if (pending.length === 0) return false;
    const generation = s.obj.metadata.generation ?? 0;
    // A batch still draining was never sent: on deletion it is dropped (its instances restored).
    const deleting = s.obj.metadata.deletionTimestamp !== undefined;
    const resend = pending.filter(
      (w) =>
        s.writesAllowed &&
        w.generation === generation &&
        w.instanceIds.length > 0 &&
        !(deleting && w.trafficPhase === 'Draining'),
    );
    const dropped = new Set(pending.filter((w) => !resend.includes(w)));
    if (dropped.size > 0) {
      s.ctx.log.info(
        { count: dropped.size },
        'pending starts of an older spec: adopting instead of re-sending',
      );
      s.inFlight = s.inFlight.filter((w) => !dropped.has(w));
    }
    for (const item of resend) {
      if (item.trafficPhase === 'Draining') {
        // Sent once drained (an item whose drain never got to be recorded waits the same way).
        if (
          !s.traffic ||
          (await this.traffic.drainStep(s.traffic, s.obj, s.tracker.reporting, item, s.now)) === 'wait'
        )
          continue;
        delete item.trafficPhase;
        delete item.phaseSince;
        await this.send(s, item, `${item.action}, after draining its instances from their load balancers`);
        continue;
      }
      await this.send(s, item, `${item.action}, re-sent after an unanswered start`);
    }
    return dropped.size > 0;
  }

  /** Sends one pending item; on an answer, records its ID and reports the start. */
  private async send(s: WorkScope, item: WorkItem, describe: string): Promise<void> {
    const id = await s.tracker.send(s.obj, item);
    item.executionId = id;
    delete item.pending;
    delete item.generation;
    const r = s.tracker.reporting;
    r.metrics.executionStarted(r.metricLabel, item.action);
    void r.events.event(
      s.obj,
      'Normal',
      ExecutionStartedEvent,
      StartExecutionAction,
      sanitizeText(`Started ${r.noun} ${id} (${describe}) on ${item.instanceIds.length} instance(s)`),
    );
  }
}
