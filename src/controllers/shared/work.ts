/**
 * The one interface every kind uses to run cloud work on instances in batches (DESIGN §3):
 * OOS executions ({@link OosExecutionTracker}) and Cloud Assistant invocations
 * ({@link InvocationTracker}) both `start` batches with a deterministic ClientToken and owner tags,
 * `adopt` in-flight work after a crash, and `poll` it into per-instance outcomes.
 */
import type { TrackedExecution } from '../../api/common.js';
import {
  ExecutionFailedEvent,
  ExecutionStartedEvent,
  ExecutionSucceededEvent,
  StartExecutionAction,
  TrackExecutionAction,
} from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { chunks } from '../../util/chunks.js';
import type { ControllerMetrics, EventSink, Resource } from './deps.js';
import { encodeLockKeys } from './lock.js';
import { clientToken } from './execution.js';

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

/** Starts, adopts and polls batches of cloud work for one resource. */
export interface WorkTracker {
  /** Largest batch one call accepts (OOS seed workflow 50; RunCommand 100). */
  readonly batchSize: number;
  /**
   * Starts `req.action` on `req.instanceIds` in batches of at most {@link batchSize}, each with a
   * ClientToken derived from (UID, generation, round, action, sorted batch) and the owner tags.
   * Each started batch is pushed to `sink` at once, so a failure part-way leaves the started ones
   * recorded. Emits an `ExecutionStarted` Event and a metric per batch.
   * @throws ReconcileError mapped from the cloud failure (the batches before it stay in `sink`).
   */
  start(owner: Resource, req: StartRequest, sink: WorkItem[], now: Date): Promise<void>;
  /** Running work tagged with the owner's UID that `known` does not list (crash before the status write). */
  adopt(owner: Resource, known: ReadonlySet<string>, now: Date): Promise<WorkItem[]>;
  /**
   * Reads every item, then folds finished ones into per-instance outcomes. All reads happen
   * before anything is folded, so a failed read leaves nothing half-processed. Emits an Event and a
   * metric per finished batch.
   * @throws ReconcileError mapped from the cloud failure.
   */
  poll(owner: Resource, items: readonly WorkItem[]): Promise<PollResult>;
}

/** The compact status form of a work item (no instance IDs: see `TrackedExecutionSchema`). */
export function toTracked(w: WorkItem): TrackedExecution {
  const t: TrackedExecution = {
    executionId: w.executionId,
    action: w.action,
    clientToken: w.clientToken,
    startTime: w.startTime,
  };
  if (w.round !== undefined) t.round = w.round;
  if (w.instanceIds.length > 0) t.instanceCount = w.instanceIds.length;
  const lockKeys = w.instanceIds.length > 0 ? encodeLockKeys(w.instanceIds) : w.lockKeys;
  if (lockKeys) t.lockKeys = lockKeys;
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
 * Starts `req` in sorted batches of at most `batchSize` (DESIGN §3): for each batch, derives the
 * ClientToken from (UID, generation, round, action, sorted batch), calls `send` (which starts the
 * work and resolves its ID), records the item in `sink` at once (so a later failure leaves it
 * recorded), counts the started metric and emits an `ExecutionStarted` Event.
 * @throws whatever `send` throws (a ReconcileError); earlier batches stay in `sink`.
 */
export async function startInBatches(
  owner: Resource,
  req: StartRequest,
  sink: WorkItem[],
  now: Date,
  batchSize: number,
  send: (batch: string[], token: string) => Promise<string>,
  r: StartReporting,
): Promise<void> {
  const o = ownerOf(owner);
  for (const batch of chunks([...req.instanceIds].sort(), batchSize)) {
    const token = clientToken({
      uid: o.uid,
      generation: o.generation,
      ...(req.tokenScope !== undefined ? { scope: req.tokenScope } : {}),
      sequence: req.round,
      action: req.action,
      instanceIds: batch,
    });
    const id = await send(batch, token);
    sink.push({
      executionId: id,
      action: req.action,
      round: req.round,
      instanceIds: batch,
      clientToken: token,
      startTime: toMetaTime(now),
    });
    r.metrics.executionStarted(r.metricLabel, req.action);
    void r.events.event(
      owner,
      'Normal',
      ExecutionStartedEvent,
      StartExecutionAction,
      sanitizeText(`Started ${r.noun} ${id} (${req.describe}) on ${batch.length} instance(s)`),
    );
  }
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
