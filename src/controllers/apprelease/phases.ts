/**
 * AppRelease phases (DESIGN §3), each recording facts on the {@link AppScope}. Cloud side: ECS
 * DescribeInstances / DescribeCloudAssistantStatus (targets and their revision tags), RunCommand /
 * DescribeInvocations / StopInvocation through the kit's {@link InvocationTracker}, TagResources /
 * UntagResources (the revision tag `ecsops.io/app.<application>`).
 *
 * Where the rollout stands lives in `status.rollout` (revision, batches with their invoke IDs,
 * failures, pause) and in the cloud (which instance carries which revision tag), so a restarted
 * controller resumes it; every RunCommand has a ClientToken derived from (UID, revision, rollout,
 * batch, sorted instances), so a batch is never started twice.
 */
import {
  PROMOTE_REQUESTED_ANNOTATION,
  REVISION_TAG_PREFIX,
  MAX_BATCH_ROWS,
  type AppRelease,
  type BatchStatus,
  type HistoryEntry,
  type ReleasePhase,
  type RolloutStatus,
} from '../../api/apprelease.js';
import { CanaryPauseReason, ConflictingReleaseReason, PausedBySpecReason } from '../../api/conditions.js';
import {
  BatchFailedEvent,
  BatchStartedEvent,
  BatchSucceededEvent,
  PromoteAction,
  RollbackAction,
  RollbackStartedEvent,
  RolledBackEvent,
  RolloutAction,
  RolloutFailedEvent,
  RolloutPausedEvent,
  RolloutPromotedEvent,
  RolloutStartedEvent,
  RolloutSucceededEvent,
  RolloutSupersededEvent,
  WaitingForInstanceLockEvent,
} from '../../api/events.js';
import type { EcsApi } from '../../cloud/types.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import parseDuration from 'parse-duration';
import type { ClaimRegistry } from '../shared/claims.js';
import { toReconcileError } from '../shared/cloud-errors.js';
import type { EventSink } from '../shared/deps.js';
import type { BaseScope } from '../shared/driver.js';
import type { InvocationTracker } from '../shared/invocation-tracker.js';
import { describeHolder, type InstanceLock, type LockHolder } from '../shared/lock.js';
import type { WorkKit } from '../shared/start.js';
import type { BackoffOptions, FailureLedger } from '../shared/retry.js';
import { listIds, resolveTargets, type ResolvedTarget } from '../shared/targets.js';
import type { InstanceOutcome, WorkItem } from '../shared/work.js';
import type { AppReleaseMetrics, RolloutResult } from './metrics.js';
import { parseWrapperOutput, type WrapperAction } from './wrapper.js';

/** Per-process state and clients the phases share. */
export interface AppContext {
  claims: ClaimRegistry;
  events: EventSink;
  metrics: AppReleaseMetrics;
  lock?: InstanceLock;
  /** The kit's start path and tracked-work step (holds `lock`). */
  work: WorkKit;
  /** Retry backoff of instances that failed to enrol (drift). */
  backoff: BackoffOptions;
}

/** What one instance's finished invocation reported, this reconcile. */
export interface InstanceResult {
  instanceId: string;
  ok: boolean;
  action: string;
  invokeId: string;
  step?: string;
  exitCode?: number;
  /** Sanitized, env values redacted, ≤ 1 KiB. */
  output?: string;
  message?: string;
}

/** Facts gathered during one AppRelease reconcile. */
export interface AppScope extends BaseScope<AppRelease> {
  ecs: EcsApi;
  tracker: InvocationTracker;
  /** Revision of the current spec. */
  revision: string;
  targets: ResolvedTarget[];
  /** Whether targets were resolved this reconcile (status keeps the old summary otherwise). */
  resolved: boolean;
  /** The revision tag of each target. */
  tags: Map<string, string | undefined>;
  inFlight: WorkItem[];
  ledger: FailureLedger;
  sequence: number;
  phase?: ReleasePhase;
  stable?: string;
  stableVersion?: string;
  rollout?: RolloutStatus;
  history: HistoryEntry[];
  results: Map<string, InstanceResult>;
  /** Instances moved back to the stable revision by the current rollout's rollback. */
  rolledBack: Set<string>;
  waiting?: { holder: LockHolder; count: number };
  /** Why the rollout holds (Paused condition). */
  held?: { reason: string; message: string };
  /** When a timed wait (pause duration, pause between batches) ends, ms since the epoch. */
  wakeAtMs?: number;
}

/** The ECS tag key recording an application's revision on an instance. */
export function revisionTagKey(application: string): string {
  return `${REVISION_TAG_PREFIX}${application}`;
}

/** Replaces every env value of the spec (4+ characters) in `text` with `[REDACTED]`, then sanitizes. */
export function redact(obj: AppRelease, text: string): string {
  let out = text;
  for (const v of Object.values(obj.spec.install?.env ?? {})) {
    if (v.length >= 4) out = out.split(v).join('[REDACTED]');
  }
  return sanitizeText(out);
}

function event(
  k: AppContext,
  s: AppScope,
  type: 'Normal' | 'Warning',
  reason: string,
  action: string,
  note: string,
): void {
  void k.events.event(s.obj, type, reason, action, redact(s.obj, note).slice(0, 1024));
}

/** reconcileTargets resolves spec.targets and reads each target's revision tag (stalls on missing listed IDs). */
export async function reconcileTargets(s: AppScope): Promise<void> {
  const { spec } = s.obj;
  s.targets = await resolveTargets(s.ecs, spec.regionId, spec.targets);
  readTags(s);
  s.ledger.retain(new Set(s.targets.map((t) => t.instanceId)));
  s.resolved = true;
}

/**
 * Sets `s.tags` from the resolved targets' revision tags, keeping the tags this reconcile wrote
 * (the tracked-work step runs first and may just have tagged or untagged instances).
 */
export function readTags(s: AppScope): void {
  const key = revisionTagKey(s.obj.spec.application);
  const written = s.tags;
  s.tags = new Map(s.targets.map((t) => [t.instanceId, t.instance.tags.find((x) => x.key === key)?.value]));
  for (const [id, value] of written) s.tags.set(id, value);
}

/**
 * reconcileConflicts stalls the newer of two AppReleases that deploy the same application on
 * overlapping instances (`ConflictingRelease`; the older one keeps them). Re-checked every 10
 * minutes, and whenever either resource changes.
 */
export async function reconcileConflicts(k: AppContext, s: AppScope): Promise<void> {
  const { obj } = s;
  const claim = {
    uid: obj.metadata.uid ?? '',
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    createdAt: String(obj.metadata.creationTimestamp ?? ''),
    subject: `${obj.spec.regionId}/${obj.spec.application}`,
    fingerprint: obj.metadata.uid ?? '',
    instanceIds: new Set(s.targets.map((t) => t.instanceId)),
  };
  k.claims.set(claim);
  const conflict = k.claims.conflictFor(claim);
  if (conflict) {
    const h = conflict.holder;
    throw new StalledError(
      ConflictingReleaseReason,
      `AppRelease ${h.namespace}/${h.name} (older) deploys application ${obj.spec.application} on ${conflict.overlap} of the same instance(s); it keeps them. Make the targets disjoint or delete one of them.`,
    );
  }
}

/** The batch holding invocation `invokeId`, if any. */
function batchOf(r: RolloutStatus | undefined, invokeId: string): BatchStatus | undefined {
  return r?.batches.find((b) => b.invokeIds.includes(invokeId));
}

/** Step and exit code from a failed outcome, plus a one-line message. */
function resultOf(obj: AppRelease, w: WorkItem, o: InstanceOutcome): InstanceResult {
  const report = parseWrapperOutput(o.output);
  const out: InstanceResult = {
    instanceId: o.instanceId,
    ok: o.ok,
    action: w.action,
    invokeId: w.executionId,
  };
  if (o.output !== undefined) out.output = redact(obj, o.output).slice(-1024);
  if (o.exitCode !== undefined) out.exitCode = o.exitCode;
  if (!o.ok) {
    out.step = report.failedStep ?? 'unknown';
    out.message = redact(
      obj,
      `${w.action} failed at step ${out.step}${o.exitCode !== undefined ? ` (exit ${o.exitCode})` : ''}: ${o.message ?? ''}`,
    ).slice(0, 512);
  }
  return out;
}

/** The step a ledger message names (`… failed at step <name> …`). */
export function stepOfMessage(message: string | undefined): string | undefined {
  return /failed at step (\S+)/.exec(message ?? '')?.[1];
}

/** Steps after which nothing changed on the host (the release was refused before the stop hook). */
const HARMLESS_STEPS = ['prepare', 'download', 'verify', 'unpack'];

/**
 * reconcileInvocations is the kind's tracked-work step (the driver runs it before every other
 * phase, on Stalled objects and on the deletion path): the kit resolves pending starts, adopts
 * running invocations the status lost and polls; this links each deploy invocation to its batch
 * row and folds finished ones: per-instance results (failing step, exit code, output tail),
 * failures into the ledger, batch bookkeeping, and the revision tag (TagResources after a
 * successful deploy or rollback; UntagResources after an uninstall or a rollback to nothing). A
 * finished item leaves `status.executions` only after its tags were written, so a tagging failure
 * is retried with the next poll.
 */
export async function reconcileInvocations(k: AppContext, s: AppScope): Promise<void> {
  const { obj, now } = s;
  const res = await k.work.reconcile(s);
  linkBatches(s, [...s.inFlight, ...res.finished.map((f) => f.work)]);
  if (res.finished.length === 0) return;
  const key = revisionTagKey(obj.spec.application);
  const tagTo = new Map<string, string[]>(); // revision ('' = untag) → instances
  for (const f of res.finished) {
    const batch = batchOf(s.rollout, f.work.executionId);
    let failed = 0;
    for (const o of f.outcomes) {
      const r = resultOf(obj, f.work, o);
      s.results.set(o.instanceId, r);
      if (o.ok) {
        // a rollback keeps the failure that caused it (rows show step, exit code, output)
        if (f.work.action !== 'rollback') s.ledger.clear(o.instanceId);
        const value =
          f.work.action === 'deploy'
            ? (s.rollout?.revision ?? s.revision)
            : f.work.action === 'rollback' && s.stable && !/is not on disk/.test(o.output ?? '')
              ? s.stable
              : '';
        tagTo.set(value, [...(tagTo.get(value) ?? []), o.instanceId]);
        if (f.work.action === 'rollback') s.rolledBack.add(o.instanceId);
      } else {
        failed += 1;
        s.ledger.fail(o.instanceId, {
          message: r.message ?? 'failed',
          executionId: f.work.executionId,
          since: toMetaTime(now),
          round: s.sequence,
        });
      }
    }
    if (f.work.action === 'deploy' && batch && s.rollout) {
      batch.failed = (batch.failed ?? 0) + failed;
      s.rollout.failed += failed;
    }
  }
  try {
    for (const [value, ids] of tagTo) {
      if (value) await s.ecs.tagResources(ids, [{ key, value }]);
      else await s.ecs.untagResources(ids, [key]);
      for (const id of ids) s.tags.set(id, value || undefined);
    }
  } catch (err) {
    // Still tracked (and held) until the tags are written: the next poll folds them again.
    s.inFlight.push(...res.finished.map((f) => f.work));
    k.work.hold(s);
    throw toReconcileError(err, 'ECS TagResources / UntagResources');
  }
  closeBatches(k, s);
}

/**
 * Links deploy invocations to their batch row: a started (or re-sent) batch by its index (the
 * item's round), adopted work of unknown origin as a new Running row.
 */
function linkBatches(s: AppScope, items: readonly WorkItem[]): void {
  const r = s.rollout;
  if (!r) return;
  for (const w of items) {
    if (w.action !== 'deploy' || !w.executionId || batchOf(r, w.executionId)) continue;
    const row = r.batches.find((b) => b.index === w.round && b.phase === 'Running');
    if (row) {
      row.invokeIds = [...row.invokeIds, w.executionId];
      continue;
    }
    r.batches.push({
      index: r.nextBatch,
      size: w.instanceIds.length,
      phase: 'Running',
      invokeIds: [w.executionId],
      startTime: w.startTime,
    });
    r.nextBatch += 1;
  }
}

/** Marks batches whose invocations all finished Succeeded / Failed (Events, duration metric). */
function closeBatches(k: AppContext, s: AppScope): void {
  const running = new Set(s.inFlight.map((w) => w.executionId));
  for (const b of s.rollout?.batches ?? []) {
    if (b.phase !== 'Running' || b.invokeIds.some((id) => running.has(id))) continue;
    b.phase = (b.failed ?? 0) > 0 ? 'Failed' : 'Succeeded';
    if (s.rollout?.enrol) s.ledger.completeRound(s.sequence, s.now, k.backoff);
    b.finishTime = toMetaTime(s.now);
    if (s.rollout) s.rollout.lastProgressTime = b.finishTime;
    if (b.startTime) k.metrics.batchFinished((s.now.getTime() - Date.parse(b.startTime)) / 1000);
    if (b.phase === 'Succeeded') {
      event(
        k,
        s,
        'Normal',
        BatchSucceededEvent,
        RolloutAction,
        `Batch ${b.index} (${b.size} instance(s)) of revision ${s.rollout?.revision} succeeded`,
      );
    } else {
      const first = [...s.results.values()].find((r) => !r.ok && b.invokeIds.includes(r.invokeId));
      event(
        k,
        s,
        'Warning',
        BatchFailedEvent,
        RolloutAction,
        `Batch ${b.index} of revision ${s.rollout?.revision}: ${b.failed} of ${b.size} instance(s) failed${first ? `; ${first.instanceId} failed at step ${first.step} (exit ${first.exitCode ?? '?'})` : ''}`,
      );
    }
  }
}

/** Count or percentage of `total` (percent rounded up for sizes, down for error budgets). */
export function resolveCount(
  v: number | string | undefined,
  total: number,
  dflt: number,
  round: 'up' | 'down',
): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return v;
  const pct = Number(v.replace('%', ''));
  const n = (pct / 100) * total;
  return round === 'up' ? Math.ceil(n) : Math.floor(n);
}

function durationMs(v: string | undefined): number {
  const ms = v ? parseDuration(v) : 0;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : 0;
}

function finishRollout(k: AppContext, s: AppScope, result: RolloutResult, message?: string): void {
  const r = s.rollout;
  if (!r) return;
  const entry: HistoryEntry = {
    revision: r.revision,
    ...(r.version ? { version: r.version } : {}),
    result,
    ...(message ? { message: redact(s.obj, message).slice(0, 1024) } : {}),
    finished: toMetaTime(s.now),
  };
  s.history = [entry, ...s.history].slice(0, s.obj.spec.revisionHistoryLimit ?? 10);
  k.metrics.rolloutFinished(s.obj.metadata.namespace ?? '', s.obj.metadata.name ?? '', result);
}

function inFlightIds(s: AppScope): string[] {
  return s.inFlight.flatMap((w) => w.instanceIds);
}

/**
 * Starts `action` on `ids` through the kit (lock, intent, ≤ 100 per RunCommand). Instances another
 * resource holds are recorded in `s.waiting` with a `WaitingForInstanceLock` Event.
 * @returns the started invocations.
 * @throws ReconcileError from the kit (a failed batch stays pending and is re-sent next time).
 */
async function start(
  k: AppContext,
  s: AppScope,
  req: { action: WrapperAction; ids: string[]; round: number; tokenScope: string; describe: string },
  opts: Parameters<WorkKit['start']>[2] = {},
): Promise<WorkItem[]> {
  const { action, ids, round, tokenScope, describe } = req;
  const out = await k.work.start(s, { round, action, instanceIds: ids, describe, tokenScope }, opts);
  const first = out.held[0];
  if (first) {
    if (!s.waiting) {
      event(
        k,
        s,
        'Normal',
        WaitingForInstanceLockEvent,
        RolloutAction,
        `${out.held.length} instance(s) wait for ${describeHolder(first.holder)} to finish its work on them`,
      );
    }
    s.waiting = { holder: first.holder, count: out.held.length };
  }
  return out.started;
}

/** Fails the rollout: rolls back (automatic) or stops at Failed. */
function failRollout(
  k: AppContext,
  s: AppScope,
  why: { message: string; step?: string; instanceId?: string; exitCode?: number },
): void {
  const r = s.rollout as RolloutStatus;
  r.failure = {
    message: redact(s.obj, why.message).slice(0, 2048),
    ...(why.step ? { step: why.step } : {}),
    ...(why.instanceId ? { instanceId: why.instanceId } : {}),
    ...(why.exitCode !== undefined ? { exitCode: why.exitCode } : {}),
  };
  event(
    k,
    s,
    'Warning',
    RolloutFailedEvent,
    RolloutAction,
    `Rollout of revision ${r.revision} failed: ${r.failure.message}`,
  );
  if (s.obj.spec.rollback?.automatic ?? true) {
    s.phase = 'RollingBack';
    r.rollbackStarted = false;
  } else {
    s.phase = 'Failed';
    finishRollout(k, s, 'Failed', r.failure.message);
  }
}

/** The first failure of this rollout, from this reconcile's results or the ledger. */
function firstFailure(s: AppScope): {
  message: string;
  step?: string;
  instanceId?: string;
  exitCode?: number;
} {
  const r = [...s.results.values()].find((x) => !x.ok && x.action === 'deploy');
  if (r) {
    const tail = (r.output ?? '')
      .split('\n')
      .filter((l) => l && !l.startsWith('ecsops-'))
      .slice(-3)
      .join(' | ');
    return {
      message:
        `${r.instanceId} failed at step ${r.step} (exit ${r.exitCode ?? '?'})${tail ? `: ${tail}` : ''}`.slice(
          0,
          2048,
        ),
      ...(r.step ? { step: r.step } : {}),
      instanceId: r.instanceId,
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    };
  }
  const id = s.ledger.ids()[0];
  const rec = id ? s.ledger.get(id) : undefined;
  const step = stepOfMessage(rec?.message);
  return {
    message: `${id ?? '?'}: ${rec?.message ?? 'failed'}`,
    ...(step ? { step } : {}),
    ...(id ? { instanceId: id } : {}),
  };
}

/**
 * The instances a rollback must move back: those tagged with the failed revision, plus those of
 * failed batches whose deploy got past the download (their stop hook ran); read from the cloud
 * (DescribeInvocations by invoke ID) so the set survives a restart.
 */
async function rollbackTargets(s: AppScope): Promise<string[]> {
  const r = s.rollout as RolloutStatus;
  const out = new Set(
    s.targets.filter((t) => s.tags.get(t.instanceId) === r.revision).map((t) => t.instanceId),
  );
  for (const b of r.batches.filter((x) => x.phase === 'Failed')) {
    for (const invokeId of b.invokeIds) {
      let invs;
      try {
        invs = await s.ecs.describeInvocations({ invokeId });
      } catch (err) {
        throw toReconcileError(err, 'ECS DescribeInvocations');
      }
      for (const inst of invs.flatMap((i) => i.instances)) {
        if (inst.invocationStatus === 'Success') continue;
        const step =
          s.results.get(inst.instanceId)?.step ?? stepOfMessage(s.ledger.get(inst.instanceId)?.message);
        if (step && HARMLESS_STEPS.includes(step)) continue;
        out.add(inst.instanceId);
      }
    }
  }
  const reachable = new Set(s.targets.filter((t) => t.reachable).map((t) => t.instanceId));
  return [...out].filter((id) => reachable.has(id)).sort();
}

/** Reachable targets that do not run the rollout's revision and are not failed (sorted). */
function pendingOf(s: AppScope, revision: string): string[] {
  const busy = new Set(inFlightIds(s));
  return s.targets
    .filter((t) => t.reachable && s.tags.get(t.instanceId) !== revision && !busy.has(t.instanceId))
    .filter((t) => !s.ledger.has(t.instanceId) || (s.rollout?.enrol && !s.ledger.inBackoff(s.now)))
    .map((t) => t.instanceId);
}

function newRollout(k: AppContext, s: AppScope, enrol: boolean): RolloutStatus {
  s.sequence += 1;
  const now = toMetaTime(s.now);
  const r: RolloutStatus = {
    revision: s.revision,
    version: s.obj.spec.version,
    sequence: s.sequence,
    startTime: now,
    lastProgressTime: now,
    nextBatch: 0,
    failed: 0,
    batches: [],
    ...(enrol ? { enrol: true } : {}),
  };
  const promote = s.obj.metadata.annotations?.[PROMOTE_REQUESTED_ANNOTATION];
  if (promote !== undefined) r.promoteHandled = promote;
  event(
    k,
    s,
    'Normal',
    RolloutStartedEvent,
    RolloutAction,
    enrol
      ? `Enrolling instance(s) without revision ${s.revision} (version ${s.obj.spec.version})`
      : `Rolling out revision ${s.revision} (version ${s.obj.spec.version})${s.stable ? `; stable revision ${s.stable}` : ''}`,
  );
  return r;
}

/**
 * reconcileRollout drives the rollout state machine when writes are allowed: supersede an old
 * revision (once its in-flight batch finished), start the next batch (canary first), hold for the
 * canary pause / spec.paused / pauseBetweenBatches, fail on maxErrors or the progress deadline,
 * roll back to the stable revision, complete, and enrol instances that lack the revision later
 * (drift). Sets `s.waiting` when the cross-kind lock holds the next instances, `s.held` while paused.
 */
export async function reconcileRollout(k: AppContext, s: AppScope): Promise<void> {
  const { obj, now } = s;
  const { spec } = obj;
  if (!s.writesAllowed) return;
  let r = s.rollout;

  // A new revision: supersede the old rollout once nothing of it runs any more.
  if (r && r.revision !== s.revision) {
    if (s.inFlight.length > 0) return;
    if (s.phase === 'Progressing' || s.phase === 'Paused' || s.phase === 'RollingBack') {
      finishRollout(k, s, 'Superseded', `superseded by revision ${s.revision}`);
      event(
        k,
        s,
        'Normal',
        RolloutSupersededEvent,
        RolloutAction,
        `Rollout of revision ${r.revision} superseded by revision ${s.revision}`,
      );
    }
    r = undefined;
  }
  if (!r) {
    const reachable = s.targets.filter((t) => t.reachable);
    if (s.inFlight.length > 0) return;
    if (
      reachable.length > 0 &&
      reachable.every((t) => s.tags.get(t.instanceId) === s.revision) &&
      s.stable === s.revision
    ) {
      s.phase = 'Succeeded';
      return;
    }
    r = s.rollout = newRollout(k, s, false);
    s.phase = 'Progressing';
    // a new revision gets a fresh chance everywhere
    for (const id of s.ledger.ids()) s.ledger.clear(id);
  }

  if (s.phase === 'RolledBack' || s.phase === 'Failed') return; // until the spec changes

  if (s.phase === 'RollingBack') {
    if (s.inFlight.length > 0) return;
    if (!r.rollbackStarted) {
      const ids = await rollbackTargets(s);
      if (ids.length > 0) {
        // A rollback moves them all or waits for the lock.
        await start(
          k,
          s,
          {
            action: 'rollback',
            ids,
            round: 0,
            tokenScope: `${r.revision}/${r.sequence}/rollback`,
            describe: `rollback to ${s.stable ?? 'none'}`,
          },
          {
            allOrNothing: true,
            onIntent: () => {
              (r as RolloutStatus).rollbackStarted = true;
              event(
                k,
                s,
                'Warning',
                RollbackStartedEvent,
                RollbackAction,
                `Rolling ${ids.length} instance(s) back to ${s.stable ? `revision ${s.stable}` : 'nothing (no stable revision)'}: ${listIds(ids)}`,
              );
            },
          },
        );
        return;
      }
      r.rollbackStarted = true;
    }
    s.phase = 'RolledBack';
    const why = r.failure?.message ?? 'rollout failed';
    finishRollout(k, s, 'RolledBack', why);
    event(
      k,
      s,
      'Warning',
      RolledBackEvent,
      RollbackAction,
      `Rolled back to ${s.stable ? `revision ${s.stable}` : 'nothing'} after: ${why}`,
    );
    return;
  }

  const targeted = s.targets.length;
  const maxErrors = resolveCount(spec.strategy?.maxErrors, targeted, 0, 'down');

  // Deadline: no batch finished or started for progressDeadlineSeconds (not counting pauses).
  const deadlineMs = (spec.progressDeadlineSeconds ?? 1800) * 1000;
  const deployRunning = s.inFlight.filter((w) => w.action === 'deploy');
  if (!r.enrol && !r.pausedAt && now.getTime() - Date.parse(r.lastProgressTime) > deadlineMs && !r.failure) {
    for (const w of deployRunning.filter((x) => !x.pending)) await s.tracker.cancel(w);
    failRollout(k, s, {
      message: `no progress for ${spec.progressDeadlineSeconds ?? 1800}s (progressDeadlineSeconds)`,
    });
    return;
  }
  if (deployRunning.length > 0) return; // a batch is running (or its start awaits an answer)

  // A finished batch that broke the error budget fails the rollout (an enrolment keeps its failures in the ledger).
  if (!r.enrol && r.failed > maxErrors) {
    failRollout(k, s, firstFailure(s));
    if ((s.phase as ReleasePhase | undefined) === 'RollingBack') await reconcileRollout(k, s);
    return;
  }

  const pending = pendingOf(s, r.revision);
  if (pending.length === 0) {
    if (s.phase !== 'Succeeded' || s.stable !== r.revision) {
      const enrolment = r.enrol;
      s.phase = 'Succeeded';
      if (!enrolment) {
        s.stable = r.revision;
        s.stableVersion = r.version ?? spec.version;
        finishRollout(k, s, 'Succeeded');
        event(
          k,
          s,
          'Normal',
          RolloutSucceededEvent,
          RolloutAction,
          `Revision ${r.revision} (version ${spec.version}) runs on ${targeted - s.targets.filter((t) => !t.reachable).length} reachable instance(s)`,
        );
      }
    }
    return;
  }
  if (s.phase === 'Succeeded') {
    // Drift: instances enrolled by tag (or restored from an image) get the current revision.
    if (s.stable !== r.revision) return;
    if (!r.enrol) r = s.rollout = { ...newRollout(k, s, true), nextBatch: r.nextBatch, batches: r.batches };
    s.phase = 'Progressing';
  }

  // Holds: spec.paused, the canary pause until promoted (or pauseDuration), pauseBetweenBatches.
  const promote = obj.metadata.annotations?.[PROMOTE_REQUESTED_ANNOTATION];
  const canary = spec.strategy?.canary;
  const canaryDone = r.batches.some((b) => b.index === 0 && b.phase !== 'Running');
  if (!r.enrol && canary && (canary.pause ?? true) && canaryDone && !r.canaryPromoted) {
    const pauseMs = durationMs(canary.pauseDuration);
    r.pausedAt ??= toMetaTime(now);
    const elapsed = pauseMs > 0 && now.getTime() - Date.parse(r.pausedAt) >= pauseMs;
    if (promote !== undefined && promote !== r.promoteHandled) r.promoteHandled = promote;
    else if (!elapsed) {
      if (r.pauseReason !== 'canary') {
        r.pauseReason = 'canary';
        event(
          k,
          s,
          'Normal',
          RolloutPausedEvent,
          RolloutAction,
          `Paused after the canary batch of revision ${r.revision}; set annotation ${PROMOTE_REQUESTED_ANNOTATION} to continue`,
        );
      }
      s.phase = 'Paused';
      s.held = {
        reason: CanaryPauseReason,
        message: `canary of revision ${r.revision} done; waiting for ${PROMOTE_REQUESTED_ANNOTATION}${pauseMs > 0 ? ` or ${canary.pauseDuration}` : ''}`,
      };
      if (pauseMs > 0) s.wakeAtMs = Date.parse(r.pausedAt) + pauseMs;
      return;
    }
    r.canaryPromoted = true;
    resume(r, now);
    event(
      k,
      s,
      'Normal',
      RolloutPromotedEvent,
      PromoteAction,
      `Rollout of revision ${r.revision} promoted after the canary`,
    );
  }
  if (spec.paused && !r.enrol) {
    if (r.pauseReason !== 'spec') {
      r.pausedAt ??= toMetaTime(now);
      r.pauseReason = 'spec';
      event(
        k,
        s,
        'Normal',
        RolloutPausedEvent,
        RolloutAction,
        `Rollout of revision ${r.revision} paused by spec.paused`,
      );
    }
    s.phase = 'Paused';
    s.held = { reason: PausedBySpecReason, message: `spec.paused is true; batch ${r.nextBatch} waits` };
    return;
  }
  if (r.pauseReason === 'spec') {
    resume(r, now);
    event(
      k,
      s,
      'Normal',
      RolloutPromotedEvent,
      PromoteAction,
      `Rollout of revision ${r.revision} resumed (spec.paused false)`,
    );
  }
  s.phase = 'Progressing';
  const between = durationMs(spec.strategy?.pauseBetweenBatches);
  const last = r.batches.at(-1);
  if (between > 0 && last?.finishTime && now.getTime() < Date.parse(last.finishTime) + between) {
    s.wakeAtMs = Date.parse(last.finishTime) + between;
    return;
  }

  // The next batch.
  const index = r.nextBatch;
  const size =
    index === 0 && canary && !r.enrol
      ? (canary.instances ?? 1)
      : Math.max(1, resolveCount(spec.strategy?.batchSize, targeted, Math.ceil(0.25 * targeted), 'up'));
  await start(
    k,
    s,
    {
      action: 'deploy',
      ids: pending,
      round: index,
      tokenScope: `${r.revision}/${r.sequence}`,
      describe: `deploy ${spec.application} ${spec.version}`,
    },
    {
      limit: size,
      onIntent: (items) => {
        const ids = items.flatMap((w) => w.instanceIds);
        const batch: BatchStatus = {
          index,
          size: ids.length,
          phase: 'Running',
          invokeIds: [],
          startTime: toMetaTime(now),
        };
        const rollout = r as RolloutStatus;
        rollout.batches = [...rollout.batches, batch].slice(-MAX_BATCH_ROWS);
        rollout.nextBatch = index + 1;
        rollout.lastProgressTime = toMetaTime(now);
        event(
          k,
          s,
          'Normal',
          BatchStartedEvent,
          RolloutAction,
          `Batch ${index}${index === 0 && canary && !rollout.enrol ? ' (canary)' : ''} of revision ${rollout.revision}: ${ids.length} instance(s): ${listIds(ids)}`,
        );
      },
    },
  );
  linkBatches(s, s.inFlight);
}

/** Leaves a pause: the time paused does not count toward the progress deadline. */
function resume(r: RolloutStatus, now: Date): void {
  if (r.pausedAt) {
    const paused = now.getTime() - Date.parse(r.pausedAt);
    r.lastProgressTime = toMetaTime(new Date(Date.parse(r.lastProgressTime) + Math.max(0, paused)));
  }
  delete r.pausedAt;
  delete r.pauseReason;
}
