/**
 * The AppRelease tracked-work step (the driver runs it before every other phase, on Stalled objects
 * and on the deletion path): the kit resolves pending starts, adopts running invocations the status
 * lost and polls; this links each started invocation to its batch row (a row exists only once one of
 * its invocations exists) or to the rollback, and folds finished ones.
 *
 * Folding is idempotent: the revision tags are written FIRST (TagResources / UntagResources are
 * naturally idempotent writes); only when they are written are results, failures and counts
 * applied. A tagging failure keeps the finished items tracked and changes nothing else, and a
 * failure is counted once per (invoke ID, instance ID) — the ledger remembers which invocation it
 * came from — however often the same invocation is folded.
 */
import {
  MAX_BATCH_ROWS,
  type AppRelease,
  type BatchStatus,
  type RolloutStatus,
} from '../../api/apprelease.js';
import { BatchFailedEvent, BatchStartedEvent, BatchSucceededEvent, RolloutAction } from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { toReconcileError } from '../shared/cloud-errors.js';
import { retryDelayMs } from '../shared/retry.js';
import { listIds } from '../shared/targets.js';
import type { FinishedWork, InstanceOutcome, WorkItem } from '../shared/work.js';
import {
  actionOfMessage,
  emit,
  redact,
  revisionTagKey,
  type AppContext,
  type AppScope,
  type InstanceResult,
} from './scope.js';
import { isTransientDownloadFailure, parseWrapperOutput, reportedRevision } from './wrapper.js';

/** Download attempts of one instance in one batch before a transport failure counts as failed. */
export const MAX_DOWNLOAD_ATTEMPTS = 3;

/** What one finished instance means for the rollout. */
type FoldKind = 'deployed' | 'failed' | 'transient' | 'rolledBack' | 'rollbackFailed' | 'uninstalled';

interface Fold {
  work: WorkItem;
  result: InstanceResult;
  kind: FoldKind;
  /** The revision tag to write: a value, `null` to remove it, undefined to leave it. */
  tag?: string | null;
}

/** reconcileInvocations: the kind's tracked-work step; see the module comment. */
export async function reconcileInvocations(k: AppContext, s: AppScope): Promise<void> {
  const res = await k.work.reconcile(s);
  link(k, s, [...s.inFlight, ...res.finished.map((f) => f.work)]);
  if (res.finished.length > 0) {
    const folds = res.finished.flatMap((f) => f.outcomes.map((o) => foldOf(s, f.work, o)));
    await writeTags(k, s, folds, res.finished);
    for (const f of folds) apply(k, s, f);
    settleRetrying(k, s, folds);
  }
  closeBatches(k, s);
}

/** The batch row holding invocation `invokeId`, if any. */
export function batchOf(r: RolloutStatus | undefined, invokeId: string): BatchStatus | undefined {
  return r?.batches.find((b) => b.invokeIds.includes(invokeId));
}

function batchIndex(s: AppScope, w: WorkItem): number | undefined {
  return batchOf(s.rollout, w.executionId)?.index ?? w.round;
}

/** Step and exit code from a finished outcome, plus a one-line message when it failed. */
function resultOf(obj: AppRelease, w: WorkItem, o: InstanceOutcome): InstanceResult {
  const out: InstanceResult = {
    instanceId: o.instanceId,
    ok: o.ok,
    action: w.action,
    invokeId: w.executionId,
  };
  if (o.output !== undefined) out.output = redact(obj, o.output).slice(-1024);
  if (o.exitCode !== undefined) out.exitCode = o.exitCode;
  if (!o.ok) {
    out.step = o.step ?? parseWrapperOutput(o.output).failedStep ?? 'unknown';
    out.message = redact(
      obj,
      `${w.action} failed at step ${out.step}${o.exitCode !== undefined ? ` (exit ${o.exitCode})` : ''}: ${o.message ?? ''}`,
    ).slice(0, 512);
  }
  return out;
}

/** The attempt a finished deploy of `w`'s batch was: a sent retry's number, else 1. */
function attemptOf(s: AppScope, w: WorkItem): number {
  const t = s.rollout?.retrying;
  return t?.sent && t.batch === batchIndex(s, w) ? t.attempt : 1;
}

/** Classifies one finished instance (no side effect). */
function foldOf(s: AppScope, w: WorkItem, o: InstanceOutcome): Fold {
  const result = resultOf(s.obj, w, o);
  const reported = o.ok ? reportedRevision(o.output) : undefined;
  if (w.action === 'deploy') {
    if (o.ok)
      return { work: w, result, kind: 'deployed', tag: reported ?? s.rollout?.revision ?? s.revision };
    const transient = isTransientDownloadFailure(parseWrapperOutput(o.output), o.exitCode);
    return {
      work: w,
      result,
      kind: transient && attemptOf(s, w) < MAX_DOWNLOAD_ATTEMPTS ? 'transient' : 'failed',
    };
  }
  if (w.action === 'rollback') {
    const to = s.rollout?.rollback?.to ?? s.stable ?? 'none';
    if (o.ok && reported === to)
      return { work: w, result, kind: 'rolledBack', tag: to === 'none' ? null : to };
    if (o.ok) {
      result.ok = false;
      result.step = 'swap';
      result.message = `rollback failed at step swap: the host reports revision ${reported ?? 'unknown'}, not ${to}`;
    }
    return { work: w, result, kind: 'rollbackFailed' };
  }
  return o.ok ? { work: w, result, kind: 'uninstalled', tag: null } : { work: w, result, kind: 'failed' };
}

/**
 * Writes the revision tags of the folds (grouped by value).
 * @throws ReconcileError when a write failed; the finished items are tracked (and held) again.
 */
async function writeTags(
  k: AppContext,
  s: AppScope,
  folds: readonly Fold[],
  finished: readonly FinishedWork[],
): Promise<void> {
  const key = revisionTagKey(s.obj.spec.application);
  const groups = new Map<string, string[]>(); // value ('' = untag) → instances
  for (const f of folds) {
    if (f.tag === undefined) continue;
    const v = f.tag ?? '';
    groups.set(v, [...(groups.get(v) ?? []), f.result.instanceId]);
  }
  try {
    for (const [value, ids] of groups) {
      if (value) await s.ecs.tagResources(ids, [{ key, value }]);
      else await s.ecs.untagResources(ids, [key]);
      for (const id of ids) s.tags.set(id, value || undefined);
      s.fleet.recordTags(ids, { [key]: value || undefined }); // the view's records predate the write
    }
  } catch (err) {
    // Nothing was folded: the next poll folds them again, once.
    s.inFlight.push(...finished.map((f) => f.work));
    k.work.hold(s);
    throw toReconcileError(err, 'ECS TagResources / UntagResources');
  }
}

/** Applies one fold: result, failure memory, counts, rollback progress. */
function apply(k: AppContext, s: AppScope, f: Fold): void {
  const { result: r, work: w } = f;
  const id = r.instanceId;
  s.results.set(id, r);
  if (f.kind === 'deployed' || f.kind === 'uninstalled') s.ledger.clear(id);
  if (f.kind === 'rolledBack') {
    const rb = s.rollout?.rollback;
    if (rb) rb.remaining = rb.remaining.filter((x) => x !== id);
    s.rolledBack.add(id);
    // a deploy failure is kept for the row; an earlier failed rollback attempt is over
    if (actionOfMessage(s.ledger.get(id)?.message) === 'rollback') s.ledger.clear(id);
  }
  if (f.kind !== 'failed' && f.kind !== 'rollbackFailed') return;
  const counted = s.ledger.get(id)?.executionId === w.executionId;
  s.ledger.fail(id, {
    message: r.message ?? 'failed',
    executionId: w.executionId,
    since: toMetaTime(s.now),
    round: s.sequence,
  });
  if (f.kind === 'rollbackFailed') {
    const rb = s.rollout?.rollback;
    if (rb)
      rb.retryAt = toMetaTime(
        new Date(s.now.getTime() + retryDelayMs(rb.attempt, k.backoff.baseMs, k.backoff.maxMs)),
      );
    return;
  }
  const batch = batchOf(s.rollout, w.executionId);
  if (w.action === 'deploy' && !counted && batch && s.rollout) {
    batch.failed = (batch.failed ?? 0) + 1;
    s.rollout.failed += 1;
  }
}

/**
 * Records the instances whose download failed in transport (`rollout.retrying`, re-sent after a
 * backoff by the retry step), or ends the retry once its re-sent work finished cleanly.
 */
function settleRetrying(k: AppContext, s: AppScope, folds: readonly Fold[]): void {
  const r = s.rollout;
  if (!r) return;
  const transient = folds.filter((f) => f.kind === 'transient');
  const first = transient[0];
  if (!first) {
    const deploying = s.inFlight.some((w) => w.action === 'deploy');
    if (r.retrying?.sent && !deploying) delete r.retrying;
    return;
  }
  const attempt = attemptOf(s, first.work) + 1;
  const waiting = r.retrying && !r.retrying.sent ? r.retrying.instanceIds : [];
  const delay = retryDelayMs(attempt - 1, k.backoff.baseMs, k.backoff.maxMs);
  r.retrying = {
    batch: batchIndex(s, first.work) ?? r.nextBatch - 1,
    instanceIds: [...new Set([...waiting, ...transient.map((f) => f.result.instanceId)])].sort(),
    attempt,
    notBefore: toMetaTime(new Date(s.now.getTime() + delay)),
  };
}

/**
 * Links started invocations: a deploy to its batch row by the item's round (created with a
 * `BatchStarted` Event when it is the batch's first invocation; adopted work of unknown origin
 * becomes the next row), a rollback to `rollout.rollback.invokeIds`.
 */
export function link(k: AppContext, s: AppScope, items: readonly WorkItem[]): void {
  const r = s.rollout;
  if (!r) return;
  for (const w of items) {
    if (!w.executionId) continue;
    if (w.action === 'rollback') {
      const rb = r.rollback;
      if (rb && !rb.invokeIds.includes(w.executionId))
        rb.invokeIds = [...rb.invokeIds, w.executionId].slice(-100);
      continue;
    }
    if (w.action !== 'deploy' || batchOf(r, w.executionId)) continue;
    const index = w.round ?? r.nextBatch;
    const row = r.batches.find((b) => b.index === index);
    if (row) {
      extendRow(r, row, w);
      continue;
    }
    const ids = [...w.instanceIds];
    const batch: BatchStatus = { index, size: ids.length, phase: 'Running', invokeIds: [w.executionId] };
    Object.assign(batch, { instanceIds: ids, startTime: w.startTime });
    for (const b of r.batches) delete b.instanceIds; // the newest batch's only (the analysis gate's)
    r.batches = [...r.batches, batch].slice(-MAX_BATCH_ROWS);
    r.nextBatch = Math.max(r.nextBatch, index + 1);
    r.lastProgressTime = toMetaTime(s.now);
    const canary = index === 0 && s.obj.spec.strategy?.canary && !r.enrol ? ' (canary)' : '';
    emit(
      k,
      s,
      'Normal',
      BatchStartedEvent,
      RolloutAction,
      `Batch ${index}${canary} of revision ${r.revision}: ${w.instanceIds.length} instance(s): ${listIds(w.instanceIds)}`,
    );
  }
}

/** Adds a further invocation of batch `row` (more than 100 instances, or a download retry). */
function extendRow(r: RolloutStatus, row: BatchStatus, w: WorkItem): void {
  row.invokeIds = [...row.invokeIds, w.executionId];
  if (r.retrying?.batch !== row.index) row.size += w.instanceIds.length;
  if (row.instanceIds) row.instanceIds = [...new Set([...row.instanceIds, ...w.instanceIds])];
}

/** True while any of the batch's work runs, waits to be sent, or waits for a download retry. */
function batchRunning(s: AppScope, b: BatchStatus): boolean {
  if (s.rollout?.retrying?.batch === b.index) return true;
  return s.inFlight.some(
    (w) => w.action === 'deploy' && (w.round === b.index || b.invokeIds.includes(w.executionId)),
  );
}

/** Marks batches whose work all ended Succeeded / Failed (Events, duration metric). */
function closeBatches(k: AppContext, s: AppScope): void {
  const r = s.rollout;
  for (const b of r?.batches ?? []) {
    if (!r || b.phase !== 'Running' || batchRunning(s, b)) continue;
    b.phase = (b.failed ?? 0) > 0 ? 'Failed' : 'Succeeded';
    if (r.enrol) s.ledger.completeRound(s.sequence, s.now, k.backoff);
    b.finishTime = toMetaTime(s.now);
    r.lastProgressTime = b.finishTime;
    if (b.startTime) k.metrics.batchFinished((s.now.getTime() - Date.parse(b.startTime)) / 1000);
    if (b.phase === 'Succeeded') {
      emit(
        k,
        s,
        'Normal',
        BatchSucceededEvent,
        RolloutAction,
        `Batch ${b.index} (${b.size} instance(s)) of revision ${r.revision} succeeded`,
      );
      continue;
    }
    const first = [...s.results.values()].find((x) => !x.ok && b.invokeIds.includes(x.invokeId));
    emit(
      k,
      s,
      'Warning',
      BatchFailedEvent,
      RolloutAction,
      `Batch ${b.index} of revision ${r.revision}: ${b.failed} of ${b.size} instance(s) failed${first ? `; ${first.instanceId} failed at step ${first.step} (exit ${first.exitCode ?? '?'})` : ''}`,
    );
  }
}
