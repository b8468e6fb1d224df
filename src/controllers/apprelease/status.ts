/**
 * Pure status derivation for AppRelease (cluster-api style): the phases record facts on the scope;
 * these functions turn them into `status.instances`, `status.summary` and the Ready / Reconciling /
 * Paused verdict. No I/O; time comes from the scope.
 */
import { trafficStatusOf } from '../shared/traffic.js';
import {
  AppInstanceStateValues,
  type AppInstanceState,
  type AppInstanceStatus,
  type AppReleaseStatus,
} from '../../api/apprelease.js';
import {
  AllTargetsUnreachableReason,
  AnalysisFailedReason,
  AnalysisInconclusiveReason,
  NoTargetsReason,
  RolledBackReason,
  RollingBackReason,
  RolloutFailedReason,
  RolloutInProgressReason,
  RolloutPausedReason,
  RolloutSucceededReason,
  SuspendedReason,
  WaitingForInstanceLockReason,
} from '../../api/conditions.js';
import { StalledError, type ReconcileError } from '../../runtime/errors.js';
import type { Outcome, Verdict } from '../shared/conditions.js';
import type { DerivedStatus } from '../shared/driver.js';
import { describeHolder } from '../shared/lock.js';
import { explainNoTargets, writeNodeStatus } from '../shared/kubernetes-nodes.js';
import { boundedRows, countStates, type RowSpec } from '../shared/rows.js';
import { toTracked } from '../shared/work.js';
import { ANALYSIS_STEP } from './analysis.js';
import { actionOfMessage, stepOfMessage, type AppScope, type InstanceResult } from './scope.js';

/** What the phases learned about one targeted instance. */
export interface AppInstanceFact {
  instanceId: string;
  reachable: boolean;
  unreachableReason?: string;
  /** Its revision tag. */
  revision?: string;
  /** The current spec's revision. */
  desired: string;
  stable?: string;
  inFlightInvokeId?: string;
  failure?: { message: string; executionId?: string };
  rolledBack: boolean;
  /** Its rollback failed (it still runs what the rollback should have replaced). */
  rollbackFailed?: boolean;
  result?: InstanceResult;
}

const ORDER: Record<AppInstanceState, number> = {
  Failed: 0,
  InProgress: 1,
  RolledBack: 2,
  Unreachable: 3,
  Pending: 4,
  Updated: 5,
};

/**
 * The state of one instance: InProgress > Unreachable > Failed (its rollback failed) > Updated >
 * RolledBack > Failed > Pending.
 */
export function appInstanceState(f: AppInstanceFact): AppInstanceState {
  if (f.inFlightInvokeId) return 'InProgress';
  if (!f.reachable) return 'Unreachable';
  if (f.rollbackFailed) return 'Failed';
  if (f.revision === f.desired) return 'Updated';
  if (f.rolledBack) return 'RolledBack';
  if (f.failure) return 'Failed';
  return 'Pending';
}

const rowSpec: RowSpec<AppInstanceState, AppInstanceFact, AppInstanceStatus> = {
  order: ORDER,
  stateOf: appInstanceState,
  idOf: (f) => f.instanceId,
  build(f, state, before) {
    const row: Omit<AppInstanceStatus, 'lastTransitionTime'> = { instanceId: f.instanceId, state };
    if (f.revision) row.revision = f.revision;
    const invoke = f.inFlightInvokeId ?? f.result?.invokeId ?? f.failure?.executionId ?? before?.executionId;
    if (invoke) row.executionId = invoke;
    if (state === 'Unreachable' && f.unreachableReason) row.message = f.unreachableReason;
    const r = f.result && !f.result.ok ? f.result : undefined;
    if (state === 'Failed' || state === 'RolledBack' || (state === 'InProgress' && (r || before?.step))) {
      const step = r?.step ?? stepOfMessage(f.failure?.message) ?? before?.step;
      if (step) row.step = step;
      const exit = r?.exitCode ?? before?.exitCode;
      if (exit !== undefined) row.exitCode = exit;
      const output = r?.output ?? before?.output;
      if (output) row.output = output.slice(-1024);
      const message = f.failure?.message ?? before?.message;
      if (message) row.message = message;
    }
    return row;
  },
};

export type AppSummary = NonNullable<AppReleaseStatus['summary']>;

/**
 * Counts over ALL facts: per state plus `healthy` (reachable, on the current or stable revision,
 * and not failed — an instance rolled back to the stable revision passed its health check there,
 * so it is healthy although its failure is kept for the row).
 */
export function summarizeApp(facts: readonly AppInstanceFact[]): AppSummary {
  const c = countStates(facts, appInstanceState, AppInstanceStateValues);
  const healthy = facts.filter(
    (f) =>
      f.reachable &&
      f.revision !== undefined &&
      (f.revision === f.desired || f.revision === f.stable) &&
      (!f.failure || (f.rolledBack && f.revision === f.stable)),
  ).length;
  return {
    targeted: c.targeted,
    updated: c.updated ?? 0,
    healthy,
    inProgress: c.inProgress ?? 0,
    failed: c.failed ?? 0,
    rolledBack: c.rolledBack ?? 0,
    pending: c.pending ?? 0,
    unreachable: c.unreachable ?? 0,
  };
}

/** Facts per targeted instance from a reconcile's scope. */
export function appFacts(s: AppScope): AppInstanceFact[] {
  const inFlightBy = new Map<string, string>();
  for (const w of s.inFlight) for (const id of w.instanceIds) inFlightBy.set(id, w.executionId || 'pending');
  const previous = new Map((s.obj.status?.instances ?? []).map((r) => [r.instanceId, r]));
  const sameRollout = s.obj.status?.rollout?.sequence === s.rollout?.sequence;
  return s.targets.map((t) => {
    const f: AppInstanceFact = {
      instanceId: t.instanceId,
      reachable: t.reachable,
      desired: s.revision,
      rolledBack:
        s.rolledBack.has(t.instanceId) ||
        (sameRollout && s.phase === 'RolledBack' && previous.get(t.instanceId)?.state === 'RolledBack'),
    };
    if (t.unreachableReason) f.unreachableReason = t.unreachableReason;
    const rev = s.tags.get(t.instanceId);
    if (rev) f.revision = rev;
    if (s.stable) f.stable = s.stable;
    const inv = inFlightBy.get(t.instanceId);
    if (inv) f.inFlightInvokeId = inv;
    const failure = s.ledger.get(t.instanceId);
    if (failure && actionOfMessage(failure.message) === 'rollback') f.rollbackFailed = true;
    if (failure)
      f.failure = {
        message: failure.message,
        ...(failure.executionId ? { executionId: failure.executionId } : {}),
      };
    const result = s.results.get(t.instanceId);
    if (result) f.result = result;
    return f;
  });
}

/**
 * The AppRelease verdict:
 * - suspended with work to do → Ready=False `Suspended`;
 * - no targets → Ready=True `NoTargets`; every target unreachable → `AllTargetsUnreachable`;
 * - RollingBack → Ready=False `RollingBack` + Reconciling; RolledBack → `RolledBack` (message: the
 *   failing step, instance and output tail); Failed → `RolloutFailed`; when spec.analysis failed the
 *   rollout, Ready's reason is `AnalysisFailed` in all three (message: metric, query, value, condition);
 * - the next batch waits for the analysis of the last one → `AnalysisInconclusive` + Reconciling when
 *   its last measurement was inconclusive, else `RolloutInProgress` naming the analysis;
 * - Paused → Ready=False `RolloutPaused` and Paused=True (`CanaryPause` / `PausedBySpec`);
 * - waiting for the cross-kind lock → `WaitingForInstanceLock` + Reconciling;
 * - Progressing → `RolloutInProgress` + Reconciling;
 * - Succeeded → Ready=True `RolloutSucceeded` (failures tolerated by maxErrors are named).
 * Paused is set False once it was True and the rollout continues.
 */
export function appReleaseVerdict(s: AppScope, summary: AppSummary): Verdict {
  const rev = `revision ${s.revision} (version ${s.obj.spec.version})`;
  const progress = `${summary.updated}/${summary.targeted - summary.unreachable} reachable instance(s) on ${rev}`;
  const wasPaused = (s.obj.status?.conditions ?? []).some((c) => c.type === 'Paused');
  const pausedCond = s.held
    ? [{ type: 'Paused', status: 'True' as const, reason: s.held.reason, message: s.held.message }]
    : wasPaused
      ? [{ type: 'Paused', status: 'False' as const, reason: 'Resumed', message: 'the rollout is not held' }]
      : [];
  const v = (status: 'True' | 'False', reason: string, message: string, reconciling: boolean): Verdict => ({
    ready: { status, reason, message },
    ...(reconciling ? { reconciling: { reason, message } } : {}),
    ...(pausedCond.length > 0 ? { extra: pausedCond } : {}),
  });
  const failure = s.rollout?.failure?.message;
  // An analysis failure names itself in Ready's reason; Reconciling keeps the phase's reason.
  const failed = (reason: string, message: string, reconciling: boolean): Verdict => {
    if (s.rollout?.failure?.step !== ANALYSIS_STEP) return v('False', reason, message, reconciling);
    const out = v('False', AnalysisFailedReason, message, false);
    return reconciling ? { ...out, reconciling: { reason, message } } : out;
  };
  if (summary.targeted === 0) return v('True', NoTargetsReason, 'no instance matches spec.targets', false);
  if (summary.unreachable === summary.targeted)
    return v(
      'False',
      AllTargetsUnreachableReason,
      `all ${summary.targeted} targeted instance(s) are unreachable`,
      false,
    );
  if (!s.writesAllowed && summary.updated < summary.targeted - summary.unreachable)
    return v('False', SuspendedReason, `${progress}; suspended, no batch starts`, false);
  switch (s.phase) {
    case 'RollingBack':
      return failed(RollingBackReason, rollingBackMessage(s, failure), true);
    case 'RolledBack':
      return failed(
        RolledBackReason,
        `rolled back to ${s.stable ? `revision ${s.stable}` : 'nothing'}: ${failure ?? 'rollout failed'}`,
        false,
      );
    case 'Failed':
      return failed(RolloutFailedReason, `rollout of ${rev} failed: ${failure ?? ''}`, false);
    case 'Paused': {
      const gate = s.gateWait ? `; ${s.gateWait.message}` : '';
      return v('False', RolloutPausedReason, `${progress}; paused: ${s.held?.message ?? ''}${gate}`, false);
    }
    case 'Succeeded':
      if (summary.pending === 0 && summary.inProgress === 0) {
        const failed =
          summary.failed > 0 ? `; ${summary.failed} failed (tolerated by maxErrors or retried)` : '';
        return v(
          summary.failed > 0 && s.rollout?.enrol ? 'False' : 'True',
          summary.failed > 0 && s.rollout?.enrol ? RolloutFailedReason : RolloutSucceededReason,
          `${progress}${failed}`,
          false,
        );
      }
      break;
    default:
      break;
  }
  if (s.gateWait)
    return v(
      'False',
      s.gateWait.inconclusive ? AnalysisInconclusiveReason : RolloutInProgressReason,
      `${progress}; waiting for the ${s.gateWait.message}`,
      true,
    );
  if (s.waiting)
    return v(
      'False',
      WaitingForInstanceLockReason,
      `${progress}; ${s.waiting.count} instance(s) wait for ${describeHolder(s.waiting.holder)}`,
      true,
    );
  return v('False', RolloutInProgressReason, `${progress}; ${summary.inProgress} in progress`, true);
}

/** `rolling back to revision R: n of m instance(s) left (k unreachable, j failed, retried at T): <failure>`. */
function rollingBackMessage(s: AppScope, failure: string | undefined): string {
  const rb = s.rollout?.rollback;
  const to = rb ? rb.to : (s.stable ?? 'none');
  const head = `rolling back to ${to === 'none' ? 'nothing' : `revision ${to}`}`;
  if (!rb) return `${head}: ${failure ?? ''}`;
  const reachable = new Set(s.targets.filter((t) => t.reachable).map((t) => t.instanceId));
  const unreachable = rb.remaining.filter((id) => !reachable.has(id)).length;
  const failed = rb.remaining.filter(
    (id) => reachable.has(id) && actionOfMessage(s.ledger.get(id)?.message) === 'rollback',
  ).length;
  const notes = [
    ...(unreachable > 0 ? [`${unreachable} unreachable, rolled back once they are back`] : []),
    ...(failed > 0 ? [`${failed} failed to roll back${rb.retryAt ? `, retried at ${rb.retryAt}` : ''}`] : []),
  ];
  const left = `${rb.remaining.length} of ${rb.total} instance(s) left${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
  return `${head}: ${left}: ${failure ?? ''}`;
}

/**
 * The AppRelease status for the driver. Summary and rows come from this reconcile's facts (kept
 * from the previous status when targets were not resolved or the resource is stalled); rollout,
 * history, tracked invocations and the failure memory are always written.
 */
export function deriveAppReleaseStatus(
  s: AppScope,
  error: ReconcileError | undefined,
  maxRows: number,
): DerivedStatus<AppReleaseStatus> & { outcome?: Outcome } {
  const prev = s.obj.status ?? {};
  const status: AppReleaseStatus = { ...prev, currentRevision: s.revision };
  if (s.phase) status.phase = s.phase;
  if (s.stable) status.stableRevision = s.stable;
  if (s.stableVersion) status.stableVersion = s.stableVersion;
  if (s.stableRelease) status.stableRelease = s.stableRelease;
  if (s.rollout) status.rollout = s.rollout;
  if (s.secretParameter) status.secretParameter = s.secretParameter;
  if (s.analysis) status.analysis = s.analysis;
  const traffic = trafficStatusOf(s.traffic);
  if (traffic) status.trafficControl = traffic;
  else delete status.trafficControl;
  if (s.history.length > 0) status.history = s.history;
  if (s.inFlight.length > 0) status.executions = s.inFlight.map((w) => toTracked(w));
  else delete status.executions;
  if (s.sequence > 0) status.executionSequence = s.sequence;
  const retry = s.ledger.toStatus();
  if (retry) status.retry = retry;
  else delete status.retry;
  writeNodeStatus(status, s.nodeScreen);
  if (!s.resolved || error instanceof StalledError) return { status };
  const facts = appFacts(s);
  const summary = summarizeApp(facts);
  status.summary = summary;
  status.instances = boundedRows(facts, prev.instances, rowSpec, maxRows, s.now);
  const verdict = explainNoTargets(appReleaseVerdict(s, summary), status.excluded);
  return { status, counts: summary, outcome: { kind: 'verdict', verdict } };
}
