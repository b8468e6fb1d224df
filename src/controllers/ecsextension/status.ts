/**
 * Pure status derivation for EcsExtension (cluster-api style): the phases record facts on the
 * scope; these functions turn facts into `status.instances`, `status.summary` and conditions.
 * No I/O, no clock reads (time is passed in), so each is table-tested.
 */
import type { ExtensionInstanceStatus, EcsExtensionStatus, InstanceState } from '../../api/ecsextension.js';
import { InstanceStateValues } from '../../api/ecsextension.js';
import {
  AllTargetsUnreachableReason,
  DriftDetectedReason,
  InstallFailedReason,
  InstallInProgressReason,
  InstalledReason,
  NoTargetsReason,
  PendingReason,
  RetryBackoffReason,
  SuspendedReason,
  UninstallInProgressReason,
  WaitingForInstanceLockReason,
} from '../../api/conditions.js';
import type { Condition } from '../../runtime/conditions.js';
import { StalledError, type ReconcileError } from '../../runtime/errors.js';
import type { DerivedStatus } from '../shared/driver.js';
import { driftDetectionOf, readStateFreshness } from '../shared/freshness.js';
import { writeNodeStatus } from '../shared/kubernetes-nodes.js';
import { writeWorkStatus } from '../shared/tracked.js';
import { isUpToDate, type ExtScope } from './phases.js';
import { summarizeConditions, type Outcome, type Verdict } from '../shared/conditions.js';
import { boundedRows, countStates, type RowSpec } from '../shared/rows.js';

/** What the phases learned about one targeted instance. */
export interface InstanceFact {
  instanceId: string;
  reachable: boolean;
  unreachableReason?: string;
  /** Installed version of the package (any), if the package state lists it. */
  installedVersion?: string;
  /** True when the installed version and parameters match the desired ones. */
  upToDate: boolean;
  /** Execution currently acting on the instance. */
  inFlightExecutionId?: string;
  /** Last failure not yet superseded by success. */
  failure?: { message: string; executionId?: string };
}

const ORDER: Record<InstanceState, number> = {
  Failed: 0,
  InProgress: 1,
  Unreachable: 2,
  Pending: 3,
  Installed: 4,
};

/** The state of one instance, in precedence order InProgress > Unreachable > Installed > Failed > Pending. */
export function instanceState(f: InstanceFact): InstanceState {
  if (f.inFlightExecutionId) return 'InProgress';
  if (!f.reachable) return 'Unreachable';
  if (f.upToDate) return 'Installed';
  if (f.failure) return 'Failed';
  return 'Pending';
}

function rowMessage(f: InstanceFact, state: InstanceState, desired: string | undefined): string | undefined {
  switch (state) {
    case 'Unreachable':
      return f.unreachableReason;
    case 'Failed':
      return f.failure?.message;
    case 'Pending':
      return f.installedVersion
        ? `installed ${f.installedVersion}, want ${desired ?? 'latest'}`
        : 'package not installed';
    default:
      return undefined;
  }
}

function rowSpec(
  desiredVersion: string | undefined,
): RowSpec<InstanceState, InstanceFact, ExtensionInstanceStatus> {
  return {
    order: ORDER,
    stateOf: instanceState,
    idOf: (f) => f.instanceId,
    build(f, state, before) {
      const row: Omit<ExtensionInstanceStatus, 'lastTransitionTime'> = { instanceId: f.instanceId, state };
      if (f.installedVersion) row.version = f.installedVersion;
      const executionId = f.inFlightExecutionId ?? f.failure?.executionId ?? before?.executionId;
      if (executionId) row.executionId = executionId;
      const message = rowMessage(f, state, desiredVersion);
      if (message) row.message = message;
      return row;
    },
  };
}

/**
 * `status.instances`: one row per fact, at most `limit`, Failed then InProgress, Unreachable,
 * Pending, Installed (then by instance ID). `lastTransitionTime` is carried over from `previous`
 * while the row's state is unchanged, so identical facts give an identical status.
 */
export function instanceRows(
  facts: readonly InstanceFact[],
  previous: readonly ExtensionInstanceStatus[] | undefined,
  desiredVersion: string | undefined,
  limit: number,
  now: Date,
): ExtensionInstanceStatus[] {
  return boundedRows(facts, previous, rowSpec(desiredVersion), limit, now);
}

export type Summary = NonNullable<EcsExtensionStatus['summary']>;

/** Counts over ALL facts (not the bounded rows). */
export function summarize(facts: readonly InstanceFact[]): Summary {
  return countStates(facts, instanceState, InstanceStateValues) as Summary;
}

/** Inputs of {@link setEcsExtensionConditions}. */
export interface ConditionFacts {
  generation: number;
  packageName: string;
  desiredVersion?: string;
  summary?: Summary;
  /** Failed instance IDs with their messages (first few are named in the Ready message). */
  failed: Array<{ instanceId: string; message: string }>;
  stalled?: { reason: string; message: string };
  /** A transient error ended this reconcile early. */
  retrying?: { reason: string; message: string };
  deleting: boolean;
  observe: boolean;
  suspended: boolean;
  nextRetryTime?: string;
  /** Gaps waiting for another resource's work on the same instances (cross-kind lock). */
  lockWait?: { count: number; holder: string };
}

/**
 * The EcsExtension verdict from its facts (stalled and transient errors are handled by the shared
 * {@link summarizeConditions}):
 * - deleting → Ready=False `UninstallInProgress`, Reconciling=True;
 * - no targets → Ready=True `NoTargets`; all unreachable → Ready=False `AllTargetsUnreachable`;
 * - executions in flight → Ready=False `InstallInProgress`, Reconciling=True;
 * - failures → Ready=False `InstallFailed`; drift in Observe mode → `DriftDetected`; drift while
 *   suspended → `Suspended`; failed instances waiting → `RetryBackoff`; other gaps → `Pending`
 *   with Reconciling=True; otherwise Ready=True `Installed`.
 */
export function ecsExtensionVerdict(f: ConditionFacts): Verdict {
  const s = f.summary ?? { targeted: 0, installed: 0, pending: 0, inProgress: 0, failed: 0, unreachable: 0 };
  const reachable = s.targeted - s.unreachable;
  const progress =
    `${s.installed}/${reachable} reachable instance(s) have ${f.packageName} ${f.desiredVersion ?? ''}`.trimEnd();
  const unreachable = s.unreachable > 0 ? `; ${s.unreachable} unreachable` : '';
  const notReady = (reason: string, message: string, reconciling?: string): Verdict => ({
    ready: { status: 'False', reason, message },
    ...(reconciling !== undefined ? { reconciling: { reason, message: reconciling } } : {}),
  });

  if (f.deleting) {
    const msg = `uninstalling ${f.packageName} before deletion; ${s.inProgress} instance(s) in progress`;
    return notReady(UninstallInProgressReason, msg, msg);
  }
  if (s.targeted === 0) {
    return {
      ready: { status: 'True', reason: NoTargetsReason, message: 'no instance matches spec.targets' },
    };
  }
  if (reachable === 0) {
    return notReady(
      AllTargetsUnreachableReason,
      `all ${s.targeted} targeted instance(s) are unreachable (stopped or Cloud Assistant offline)`,
    );
  }
  if (s.inProgress > 0) {
    const msg = `${progress}; ${s.inProgress} in progress${unreachable}`;
    return notReady(InstallInProgressReason, msg, msg);
  }
  if (s.failed > 0) {
    const named = f.failed
      .slice(0, 3)
      .map((x) => `${x.instanceId}: ${x.message}`)
      .join('; ');
    const more = f.failed.length > 3 ? ` (and ${f.failed.length - 3} more)` : '';
    const retry = f.nextRetryTime && !f.observe && !f.suspended ? `; retrying after ${f.nextRetryTime}` : '';
    return notReady(
      InstallFailedReason,
      `${s.failed} instance(s) failed: ${named}${more}${retry}`.slice(0, 2048),
    );
  }
  if (s.pending > 0) {
    const ids = `${s.pending} instance(s) missing or outdated`;
    if (f.observe) return notReady(DriftDetectedReason, `${ids} (mode Observe: not acting); ${progress}`);
    if (f.suspended) return notReady(SuspendedReason, `${ids}; suspended, no executions start`);
    if (f.lockWait) {
      const msg = `${ids}; ${f.lockWait.count} wait for ${f.lockWait.holder}, which is acting on them`;
      return notReady(WaitingForInstanceLockReason, msg, msg);
    }
    if (f.nextRetryTime) return notReady(RetryBackoffReason, `${ids}; retrying after ${f.nextRetryTime}`);
    return {
      ready: { status: 'False', reason: PendingReason, message: `${ids}; ${progress}` },
      reconciling: { reason: PendingReason, message: ids },
    };
  }
  return { ready: { status: 'True', reason: InstalledReason, message: `${progress}${unreachable}` } };
}

/**
 * Derives Ready / Reconciling / Stalled (kstatus) for an EcsExtension: a stalled cause wins, then
 * a transient error (Reconciling=True, Ready untouched), then {@link ecsExtensionVerdict}.
 */
export function setEcsExtensionConditions(
  prev: readonly Condition[] | undefined,
  f: ConditionFacts,
  now: Date,
): Condition[] {
  const outcome: Outcome = f.stalled
    ? { kind: 'stalled', error: f.stalled }
    : f.retrying
      ? { kind: 'retrying', error: f.retrying }
      : { kind: 'verdict', verdict: ecsExtensionVerdict(f) };
  return summarizeConditions(prev, f.generation, outcome, now);
}

/** Facts per targeted instance from a reconcile's scope (package states must have been read). */
export function extensionFacts(scope: ExtScope): InstanceFact[] {
  const inFlightBy = new Map<string, string>();
  for (const [id, work] of scope.sharedInFlight) inFlightBy.set(id, work);
  for (const e of scope.inFlight)
    for (const id of e.instanceIds) inFlightBy.set(id, e.executionId || 'pending');
  return scope.targets.map((t) => {
    const state = scope.states?.get(t.instanceId);
    const upToDate = t.reachable && isUpToDate(scope, state);
    const f: InstanceFact = {
      instanceId: t.instanceId,
      reachable: t.reachable,
      unreachableReason: t.unreachableReason,
      installedVersion: state?.templateVersion,
      upToDate,
      inFlightExecutionId: inFlightBy.get(t.instanceId),
    };
    const failure = scope.ledger.get(t.instanceId);
    if (failure && !upToDate) {
      f.failure = {
        message: failure.message,
        ...(failure.executionId ? { executionId: failure.executionId } : {}),
      };
    }
    return f;
  });
}

/**
 * The EcsExtension status for the driver: summary and rows from this reconcile's facts (kept from
 * the previous status when an error came before the package states were read, or the resource is
 * stalled), tracked executions in compact form, the execution sequence, and the failure memory —
 * always written, so an execution leaves `status.executions` only in the write that records its
 * outcome.
 */
export function deriveEcsExtensionStatus(
  scope: ExtScope,
  error: ReconcileError | undefined,
  maxRows: number,
): DerivedStatus<EcsExtensionStatus> & { outcome?: Outcome } {
  const { obj } = scope;
  const prev = obj.status ?? {};
  const status: EcsExtensionStatus = { ...prev };
  const facts = scope.states && !(error instanceof StalledError) ? extensionFacts(scope) : undefined;
  let counts: Record<string, number> | undefined;
  let freshness: { oldestReadAgeSeconds?: number } | undefined;
  if (facts) {
    status.summary = summarize(facts);
    status.instances = instanceRows(facts, prev.instances, scope.resolvedVersion, maxRows, scope.now);
    counts = status.summary;
    const fr = readStateFreshness(
      scope.fleet,
      'packages',
      facts.filter((f) => f.reachable).map((f) => f.instanceId),
      prev.stateFreshness,
      driftDetectionOf(obj.spec),
    );
    status.stateFreshness = fr.status;
    freshness =
      fr.oldestReadAgeSeconds !== undefined ? { oldestReadAgeSeconds: fr.oldestReadAgeSeconds } : {};
  }
  if (scope.resolvedVersion) status.resolvedPackageVersion = scope.resolvedVersion;
  writeNodeStatus(status, scope.nodeScreen);
  writeWorkStatus(status, scope.inFlight, scope.sequence, scope.ledger);
  if (!facts) return { status };
  const failed = facts
    .filter((f) => f.failure && !f.inFlightExecutionId && f.reachable)
    .map((f) => ({ instanceId: f.instanceId, message: f.failure?.message ?? '' }));
  const verdict = ecsExtensionVerdict({
    generation: obj.metadata.generation ?? 0,
    packageName: obj.spec.packageName,
    desiredVersion: scope.resolvedVersion,
    summary: status.summary,
    failed,
    deleting: Boolean(obj.metadata.deletionTimestamp),
    observe: obj.spec.mode === 'Observe',
    suspended: Boolean(obj.spec.suspend),
    nextRetryTime: scope.ledger.retryAt,
    ...(scope.lockWait ? { lockWait: scope.lockWait } : {}),
  });
  return {
    status,
    ...(counts ? { counts } : {}),
    ...(freshness ? { freshness } : {}),
    outcome: { kind: 'verdict', verdict },
  };
}
