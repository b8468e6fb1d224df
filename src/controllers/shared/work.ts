/**
 * The one interface every kind uses to run cloud work on instances in batches (DESIGN §3):
 * OOS executions ({@link OosExecutionTracker}) and Cloud Assistant invocations
 * ({@link InvocationTracker}) both `start` batches with a deterministic ClientToken and owner tags,
 * `adopt` in-flight work after a crash, and `poll` it into per-instance outcomes.
 */
import type { TrackedExecution } from '../../api/common.js';
import { ExecutionFailedEvent, ExecutionSucceededEvent, TrackExecutionAction } from '../../api/events.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import type { ControllerMetrics, EventSink, Resource } from './deps.js';
import { encodeLockKeys } from './lock.js';

/** Work in flight, as this process knows it (with the instance batch). */
export interface WorkItem {
  /** OOS execution ID or Cloud Assistant invoke ID. */
  executionId: string;
  action: string;
  /** The round (`status.executionSequence`) that started it; undefined for adopted 0.1.0 work. */
  round?: number;
  /** The batch. Empty right after a restart until the first poll reads it back from the cloud. */
  instanceIds: string[];
  clientToken: string;
  /** RFC 3339. */
  startTime: string;
  /** The batch's lock keys from status, until a poll reads the instance IDs back (see lock.ts). */
  lockKeys?: string;
  /**
   * True from the moment the start is recorded (intent, DESIGN §8.1) until the cloud answered with
   * an ID; `executionId` is empty meanwhile. A pending item keeps its batch in status (so it can be
   * re-sent with the same ClientToken after a crash) and holds its instances' lock.
   */
  pending?: boolean;
  /** The generation the pending start was decided for (a re-send is only made for the same one). */
  generation?: number;
  /**
   * spec.trafficControl (traffic.ts): `Draining` — a pending start whose instances are being taken
   * out of rotation (sent once `drainSeconds` passed since `phaseSince`); `Restoring` — ended work
   * held back until the load balancer reports its instances healthy.
   */
  trafficPhase?: 'Draining' | 'Restoring';
  /** RFC 3339: Draining — when the drain was confirmed applied; Restoring — when the originals were back. */
  phaseSince?: string;
  /** In memory only: the ended work a `Restoring` item holds back (re-read by a poll after a restart). */
  finished?: FinishedWork;
}

/** The result of one instance of a finished batch. */
export interface InstanceOutcome {
  instanceId: string;
  ok: boolean;
  /** Sanitized, ≤ 512 characters; set when not ok. */
  message?: string;
  /** Cloud Assistant only. */
  exitCode?: number;
  /** Cloud Assistant only: sanitized output tail. */
  output?: string;
  /** The work was cancelled before it ran or finished here (OOS loop item Cancelled / Skipped). */
  cancelled?: boolean;
  /**
   * The step that failed when the kit itself judged the outcome after the cloud work succeeded
   * (`loadBalancerHealth`: traffic.ts); otherwise a kind reads it from the output.
   */
  step?: string;
}

/** A batch that reached a terminal status. */
export interface FinishedWork {
  work: WorkItem;
  /** Terminal status as the cloud reports it (`Success`, `Failed`, `Cancelled`, `PartialFailed`, ...). */
  status: string;
  outcomes: InstanceOutcome[];
}

/** What {@link WorkTracker.poll} found. */
export interface PollResult {
  running: WorkItem[];
  finished: FinishedWork[];
  /** Work the cloud no longer knows (expired history); dropped from status. */
  vanished: WorkItem[];
}

/** What to start. */
export interface StartRequest {
  round: number;
  action: string;
  instanceIds: readonly string[];
  /** Short human description for Events, e.g. `install ACS-Extension-node v3`. */
  describe: string;
  /**
   * Replaces the generation in the ClientToken: work that must not restart when unrelated spec
   * fields change (e.g. an AppRelease batch is keyed by revision and rollout, not generation).
   */
  tokenScope?: string;
}

/**
 * IDs of the work `owner`'s status tracked when the reconcile began (`status.executions`): the
 * `known` set for {@link WorkTracker.adopt}, so work a poll just saw finish is never adopted
 * again from a shared listing that still shows it active (it is up to a poll delay old).
 */
export function trackedIds(owner: Resource): Set<string> {
  const status = owner.status as { executions?: ReadonlyArray<{ executionId: string }> } | undefined;
  return new Set((status?.executions ?? []).map((e) => e.executionId));
}

/**
 * Sends, adopts and polls batches of cloud work for one resource. Only the kit's start path
 * (`start.ts`) calls {@link send}: it records the intent, holds the lock and reports the start.
 */
export interface WorkTracker {
  /** Largest batch one call accepts (OOS seed workflow 50; RunCommand 100). */
  readonly batchSize: number;
  /** How started and finished work is reported (metric label, Event wording). */
  readonly reporting: StartReporting;
  /**
   * Sends ONE batch: `item.action` on `item.instanceIds` with `item.clientToken` and the owner
   * tags (OOS `StartExecution` / ECS `RunCommand`). Same token → the cloud answers with the work it
   * already started, so a re-send after a lost answer never duplicates it.
   * @returns the execution ID / invoke ID.
   * @throws ReconcileError mapped from the cloud failure (the call may still have acted).
   */
  send(owner: Resource, item: WorkItem): Promise<string>;
  /**
   * Running work tagged with the owner's UID that `known` does not list. With `force`, a fresh
   * listing is read even when this process believes nothing can be untracked (a start whose answer
   * was lost).
   */
  adopt(
    owner: Resource,
    known: ReadonlySet<string>,
    now: Date,
    opts?: { force?: boolean },
  ): Promise<WorkItem[]>;
  /**
   * Reads every item, then folds finished ones into per-instance outcomes. All reads happen
   * before anything is folded, so a failed read leaves nothing half-processed. Emits an Event and a
   * metric per finished batch.
   * @throws ReconcileError mapped from the cloud failure.
   */
  poll(owner: Resource, items: readonly WorkItem[]): Promise<PollResult>;
}

/**
 * The compact status form of a work item (no instance IDs, except while pending: see
 * `TrackedExecutionSchema`). `locking` says whether the item's action takes the per-instance lock
 * (DESIGN §1: a PatchPolicy scan does not); only then does the entry carry `lockKeys`.
 */
export function toTracked(w: WorkItem, locking = true): TrackedExecution {
  const t: TrackedExecution = {
    executionId: w.executionId,
    action: w.action,
    clientToken: w.clientToken,
    startTime: w.startTime,
  };
  if (w.round !== undefined) t.round = w.round;
  if (w.instanceIds.length > 0) t.instanceCount = w.instanceIds.length;
  if (w.pending) {
    t.pending = true;
    t.instanceIds = [...w.instanceIds];
    if (w.generation !== undefined) t.generation = w.generation;
  }
  if (w.trafficPhase) t.trafficPhase = w.trafficPhase;
  if (w.phaseSince) t.phaseSince = w.phaseSince;
  const lockKeys = w.instanceIds.length > 0 ? encodeLockKeys(w.instanceIds) : w.lockKeys;
  if (lockKeys && locking) t.lockKeys = lockKeys;
  return t;
}

/** A status entry back to a work item (instance IDs read back by the next poll). */
export function fromTracked(t: TrackedExecution): WorkItem {
  return {
    executionId: t.executionId,
    action: t.action,
    ...(t.round !== undefined ? { round: t.round } : {}),
    instanceIds: [...(t.instanceIds ?? [])],
    clientToken: t.clientToken,
    startTime: t.startTime,
    ...(t.lockKeys ? { lockKeys: t.lockKeys } : {}),
    ...(t.pending ? { pending: true } : {}),
    ...(t.generation !== undefined ? { generation: t.generation } : {}),
    ...(t.trafficPhase ? { trafficPhase: t.trafficPhase } : {}),
    ...(t.phaseSince ? { phaseSince: t.phaseSince } : {}),
  };
}

/** The owner's identity fields. */
export function ownerOf(obj: Resource): {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  generation: number;
} {
  return {
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    uid: obj.metadata.uid ?? '',
    generation: obj.metadata.generation ?? 0,
  };
}

/** How a tracker reports each started batch. */
export interface StartReporting {
  metrics: ControllerMetrics;
  events: EventSink;
  /** `ecsops_executions_started_total{template}` label. */
  metricLabel: string;
  /** Event wording, e.g. `OOS execution` or `Cloud Assistant invocation`. */
  noun: string;
}

/**
 * Reports a finished batch: `ecsops_executions_finished_total{template,status}` +1 and an
 * `ExecutionSucceeded` (every instance ok and the cloud said Success) or `ExecutionFailed` Event
 * naming the first failed instance.
 */
export function reportFinished(owner: Resource, f: FinishedWork, r: StartReporting): void {
  r.metrics.executionFinished(r.metricLabel, f.status);
  const { work } = f;
  const failed = f.outcomes.filter((o) => !o.ok);
  if (failed.length === 0 && f.status === 'Success') {
    void r.events.event(
      owner,
      'Normal',
      ExecutionSucceededEvent,
      TrackExecutionAction,
      sanitizeText(
        `${r.noun} ${work.executionId} (${work.action}) succeeded on ${work.instanceIds.length} instance(s)`,
      ),
    );
    return;
  }
  const first = failed[0];
  const detail = first ? `; ${first.instanceId}: ${first.message ?? ''}` : '';
  void r.events.event(
    owner,
    'Warning',
    ExecutionFailedEvent,
    TrackExecutionAction,
    sanitizeText(
      `${r.noun} ${work.executionId} (${work.action}) ended ${f.status}: ${failed.length} of ${work.instanceIds.length} instance(s) failed${detail}`,
    ).slice(0, 1024),
  );
}

/**
 * Poll delay for running work: a quarter of the oldest item's age, within [minMs, maxMs], so a
 * long execution is not polled every few seconds.
 * @param startTimes RFC 3339 start times of the running items.
 * @returns milliseconds.
 */
export function pollDelayMs(startTimes: readonly string[], now: Date, minMs: number, maxMs: number): number {
  const oldest = Math.min(...startTimes.map((t) => Date.parse(t) || now.getTime()));
  return Math.min(maxMs, Math.max(minMs, (now.getTime() - oldest) / 4));
}
