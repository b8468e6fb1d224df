/**
 * Pure status derivation for EcsExtension (cluster-api style): the phases record facts on the
 * scope; these functions turn facts into `status.instances`, `status.summary` and conditions.
 * No I/O, no clock reads (time is passed in), so each is table-tested.
 */
import type { ExtensionInstanceStatus, EcsExtensionStatus, InstanceState } from '../../api/ecsextension.js';
import {
  AllTargetsUnreachableReason,
  DriftDetectedReason,
  InstallFailedReason,
  InstallInProgressReason,
  InstalledReason,
  NoTargetsReason,
  PendingReason,
  ProgressingReason,
  RetryBackoffReason,
  SuspendedReason,
  UninstallInProgressReason,
} from '../../api/conditions.js';
import {
  clearReconciling,
  clearStalled,
  markNotReady,
  markReady,
  markReadyUnknown,
  markReconciling,
  markStalled,
  toMetaTime,
  type Condition,
} from '../../runtime/conditions.js';

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
  const prev = new Map((previous ?? []).map((r) => [r.instanceId, r]));
  const nowIso = toMetaTime(now);
  const rows = facts.map((f) => {
    const state = instanceState(f);
    const before = prev.get(f.instanceId);
    const row: ExtensionInstanceStatus = { instanceId: f.instanceId, state };
    if (f.installedVersion) row.version = f.installedVersion;
    const executionId = f.inFlightExecutionId ?? f.failure?.executionId ?? before?.executionId;
    if (executionId) row.executionId = executionId;
    const message = rowMessage(f, state, desiredVersion);
    if (message) row.message = message.slice(0, 1024);
    row.lastTransitionTime =
      before && before.state === state && before.lastTransitionTime ? before.lastTransitionTime : nowIso;
    return row;
  });
  rows.sort((a, b) => ORDER[a.state] - ORDER[b.state] || (a.instanceId < b.instanceId ? -1 : 1));
  return rows.slice(0, limit);
}

export type Summary = NonNullable<EcsExtensionStatus['summary']>;

/** Counts over ALL facts (not the bounded rows). */
export function summarize(facts: readonly InstanceFact[]): Summary {
  const s: Summary = {
    targeted: facts.length,
    installed: 0,
    pending: 0,
    inProgress: 0,
    failed: 0,
    unreachable: 0,
  };
  for (const f of facts) {
    const state = instanceState(f);
    if (state === 'Installed') s.installed++;
    else if (state === 'Pending') s.pending++;
    else if (state === 'InProgress') s.inProgress++;
    else if (state === 'Failed') s.failed++;
    else s.unreachable++;
  }
  return s;
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
}

/**
 * Derives Ready / Reconciling / Stalled (kstatus) from the facts:
 * - stalled → Stalled=True and Ready=False with the stalled reason;
 * - transient error → Reconciling=True `ProgressingWithRetry`-style reason, Ready untouched
 *   (Unknown on the first visit) so a throttled API does not flap Ready;
 * - deleting → Ready=False `UninstallInProgress`, Reconciling=True;
 * - no targets → Ready=True `NoTargets`; executions in flight → Ready=False
 *   `InstallInProgress`, Reconciling=True; failures → Ready=False `InstallFailed`; drift in
 *   Observe mode → `DriftDetected`; drift while suspended → `Suspended`; otherwise
 *   Ready=True `Installed`.
 */
export function setEcsExtensionConditions(
  prev: readonly Condition[] | undefined,
  f: ConditionFacts,
  now: Date,
): Condition[] {
  const g = f.generation;
  let conds: Condition[] = [...(prev ?? [])];
  if (!conds.some((c) => c.type === 'Ready')) {
    conds = markReadyUnknown(
      conds,
      { reason: ProgressingReason, message: 'reconciliation in progress', observedGeneration: g },
      now,
    );
  }
  if (f.retrying) {
    return markReconciling(
      conds,
      { reason: f.retrying.reason, message: f.retrying.message, observedGeneration: g },
      now,
    );
  }
  if (f.stalled) {
    conds = markNotReady(
      conds,
      { reason: f.stalled.reason, message: f.stalled.message, observedGeneration: g },
      now,
    );
    return markStalled(
      conds,
      { reason: f.stalled.reason, message: f.stalled.message, observedGeneration: g },
      now,
    );
  }
  conds = clearStalled(conds);
  const s = f.summary ?? { targeted: 0, installed: 0, pending: 0, inProgress: 0, failed: 0, unreachable: 0 };
  const reachable = s.targeted - s.unreachable;
  const progress =
    `${s.installed}/${reachable} reachable instance(s) have ${f.packageName} ${f.desiredVersion ?? ''}`.trimEnd();
  const unreachable = s.unreachable > 0 ? `; ${s.unreachable} unreachable` : '';

  if (f.deleting) {
    const msg = `uninstalling ${f.packageName} before deletion; ${s.inProgress} instance(s) in progress`;
    conds = markNotReady(
      conds,
      { reason: UninstallInProgressReason, message: msg, observedGeneration: g },
      now,
    );
    return markReconciling(
      conds,
      { reason: UninstallInProgressReason, message: msg, observedGeneration: g },
      now,
    );
  }
  if (s.targeted === 0) {
    conds = markReady(
      conds,
      { reason: NoTargetsReason, message: 'no instance matches spec.targets', observedGeneration: g },
      now,
    );
    return clearReconciling(conds);
  }
  if (reachable === 0) {
    const msg = `all ${s.targeted} targeted instance(s) are unreachable (stopped or Cloud Assistant offline)`;
    conds = markNotReady(
      conds,
      { reason: AllTargetsUnreachableReason, message: msg, observedGeneration: g },
      now,
    );
    return clearReconciling(conds);
  }
  if (s.inProgress > 0) {
    const msg = `${progress}; ${s.inProgress} in progress${unreachable}`;
    conds = markNotReady(
      conds,
      { reason: InstallInProgressReason, message: msg, observedGeneration: g },
      now,
    );
    return markReconciling(
      conds,
      { reason: InstallInProgressReason, message: msg, observedGeneration: g },
      now,
    );
  }
  if (s.failed > 0) {
    const named = f.failed
      .slice(0, 3)
      .map((x) => `${x.instanceId}: ${x.message}`)
      .join('; ');
    const more = f.failed.length > 3 ? ` (and ${f.failed.length - 3} more)` : '';
    const retry = f.nextRetryTime && !f.observe && !f.suspended ? `; retrying after ${f.nextRetryTime}` : '';
    const msg = `${s.failed} instance(s) failed: ${named}${more}${retry}`.slice(0, 2048);
    conds = markNotReady(conds, { reason: InstallFailedReason, message: msg, observedGeneration: g }, now);
    return clearReconciling(conds);
  }
  if (s.pending > 0) {
    const ids = `${s.pending} instance(s) missing or outdated`;
    if (f.observe) {
      conds = markNotReady(
        conds,
        {
          reason: DriftDetectedReason,
          message: `${ids} (mode Observe: not acting); ${progress}`,
          observedGeneration: g,
        },
        now,
      );
      return clearReconciling(conds);
    }
    if (f.suspended) {
      conds = markNotReady(
        conds,
        { reason: SuspendedReason, message: `${ids}; suspended, no executions start`, observedGeneration: g },
        now,
      );
      return clearReconciling(conds);
    }
    if (f.nextRetryTime) {
      conds = markNotReady(
        conds,
        {
          reason: RetryBackoffReason,
          message: `${ids}; retrying after ${f.nextRetryTime}`,
          observedGeneration: g,
        },
        now,
      );
      return clearReconciling(conds);
    }
    conds = markNotReady(
      conds,
      { reason: PendingReason, message: `${ids}; ${progress}`, observedGeneration: g },
      now,
    );
    return markReconciling(conds, { reason: PendingReason, message: ids, observedGeneration: g }, now);
  }
  conds = markReady(
    conds,
    { reason: InstalledReason, message: `${progress}${unreachable}`, observedGeneration: g },
    now,
  );
  return clearReconciling(conds);
}
