/**
 * Pure status derivation for PatchPolicy (cluster-api style): the phases record facts on the
 * scope; these functions turn facts into `status.instances`, `status.summary`, the window and
 * schedule fields, and the Ready / Compliant verdict. No I/O and no clock reads.
 */
import { trafficStatusOf } from '../shared/traffic.js';
import {
  AllCompliantReason,
  AllTargetsUnreachableReason,
  AnalysisFailedReason,
  AnalysisInconclusiveReason,
  CompliantCondition,
  InstallFailedReason,
  InstallInProgressReason,
  NoTargetsReason,
  NonCompliantReason,
  NotScannedReason,
  OperatingReason,
  ScanFailedReason,
  ScanInProgressReason,
  SuspendedReason,
  WaitingForInstanceLockReason,
} from '../../api/conditions.js';
import {
  PatchInstanceStateValues,
  type MissingPatch,
  type PatchInstanceState,
  type PatchInstanceStatus,
  type PatchOperation,
  type PatchPolicyStatus,
  type SnapshotRef,
} from '../../api/patchpolicy.js';
import type { InstancePatchState } from '../../cloud/types.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError, type ReconcileError } from '../../runtime/errors.js';
import type { Outcome, Verdict } from '../shared/conditions.js';
import type { DerivedStatus } from '../shared/driver.js';
import { driftDetectionOf, readStateFreshness } from '../shared/freshness.js';
import { boundedRows, countStates, type RowSpec } from '../shared/rows.js';
import { failureMessage } from '../shared/analysis/gate.js';
import { installStopped } from './analysis.js';
import { describeSkipped, isHeld } from '../shared/schedule.js';
import { explainNoTargets, writeNodeStatus } from '../shared/kubernetes-nodes.js';
import { writeWorkStatus } from '../shared/tracked.js';
import { inFlightOf, nextScanAt, type PatchScope } from './phases.js';

/** What the phases learned about one targeted instance. */
export interface PatchFact {
  instanceId: string;
  reachable: boolean;
  unreachableReason?: string;
  state?: InstancePatchState;
  /** Install execution running on the instance. */
  installing?: string;
  /** Scan execution running on the instance. */
  scanning?: string;
  failure?: { message: string; executionId?: string };
  scanFailure?: string;
  patches?: MissingPatch[];
  snapshots?: SnapshotRef[];
  nonCompliantSince?: string;
}

const ORDER: Record<PatchInstanceState, number> = {
  Failed: 0,
  Patching: 1,
  Unreachable: 2,
  NonCompliant: 3,
  PendingReboot: 4,
  Unscanned: 5,
  Compliant: 6,
};

/** The state of one instance: Patching > Unreachable > Failed > Unscanned > NonCompliant > PendingReboot > Compliant. */
export function patchInstanceState(f: PatchFact): PatchInstanceState {
  if (f.installing) return 'Patching';
  if (!f.reachable) return 'Unreachable';
  const s = f.state;
  const compliant =
    s !== undefined && s.missingCount === 0 && s.failedCount === 0 && s.installedPendingRebootCount === 0;
  if (f.failure && !compliant) return 'Failed';
  if (!s) return 'Unscanned';
  if (s.missingCount > 0 || s.failedCount > 0) return 'NonCompliant';
  if (s.installedPendingRebootCount > 0) return 'PendingReboot';
  return 'Compliant';
}

function rowMessage(f: PatchFact, state: PatchInstanceState): string | undefined {
  const s = f.state;
  switch (state) {
    case 'Unreachable':
      return f.unreachableReason;
    case 'Failed':
      return f.failure?.message;
    case 'Unscanned':
      return f.scanFailure ? `scan failed: ${f.scanFailure}` : f.scanning ? 'scanning' : 'never scanned';
    case 'NonCompliant':
      return `${s?.missingCount ?? 0} missing, ${s?.failedCount ?? 0} failed patch(es)`;
    case 'PendingReboot':
      return `${s?.installedPendingRebootCount ?? 0} patch(es) installed, waiting for a reboot (install.rebootIfNeeded is false)`;
    case 'Patching':
      return 'install execution running';
    default:
      return f.scanFailure ? `last scan failed: ${f.scanFailure}` : undefined;
  }
}

const rowSpec: RowSpec<PatchInstanceState, PatchFact, PatchInstanceStatus> = {
  order: ORDER,
  stateOf: patchInstanceState,
  idOf: (f) => f.instanceId,
  build(f, state, before) {
    const row: Omit<PatchInstanceStatus, 'lastTransitionTime'> = { instanceId: f.instanceId, state };
    const s = f.state;
    if (s) {
      row.missingCount = s.missingCount;
      row.failedCount = s.failedCount;
      row.pendingRebootCount = s.installedPendingRebootCount;
      row.installedCount = s.installedCount;
      if (s.operationType === 'scan' && s.operationEndTime) row.lastScanTime = s.operationEndTime;
      else if (before?.lastScanTime) row.lastScanTime = before.lastScanTime;
      if (s.operationType === 'install' && s.operationEndTime) row.lastInstallTime = s.operationEndTime;
      else if (before?.lastInstallTime) row.lastInstallTime = before.lastInstallTime;
    }
    const executionId = f.installing ?? f.scanning ?? f.failure?.executionId ?? before?.executionId;
    if (executionId) row.executionId = executionId;
    const snapshots = f.snapshots ?? before?.snapshots;
    if (snapshots && snapshots.length > 0) row.snapshots = snapshots;
    const noncompliant = state === 'NonCompliant' || state === 'PendingReboot' || state === 'Failed';
    const patches = noncompliant ? (f.patches ?? before?.missingPatches) : undefined;
    if (patches && patches.length > 0) row.missingPatches = patches;
    if (noncompliant && (f.nonCompliantSince ?? before?.nonCompliantSince))
      row.nonCompliantSince = f.nonCompliantSince ?? before?.nonCompliantSince;
    const message = rowMessage(f, state);
    if (message) row.message = message;
    return row;
  },
};

/** `status.instances`: at most `limit` rows, Failed, Patching, Unreachable, NonCompliant, PendingReboot, Unscanned, Compliant. */
export function patchRows(
  facts: readonly PatchFact[],
  previous: readonly PatchInstanceStatus[] | undefined,
  limit: number,
  now: Date,
): PatchInstanceStatus[] {
  return boundedRows(facts, previous, rowSpec, limit, now);
}

export type PatchSummary = NonNullable<PatchPolicyStatus['summary']>;

/** Counts over ALL facts. */
export function summarizePatches(facts: readonly PatchFact[]): PatchSummary {
  return countStates(facts, patchInstanceState, PatchInstanceStateValues) as PatchSummary;
}

/** Inputs of {@link patchPolicyVerdict}. */
export interface PatchVerdictFacts {
  summary: PatchSummary;
  scanning: number;
  installing: number;
  lastScan?: PatchOperation;
  suspended: boolean;
  failed: Array<{ instanceId: string; message: string }>;
  nextScan?: string;
  nextWindow?: string;
  windowOpen: boolean;
  /** A window occurrence skipped for a blackout date (`held`: it would be open now). */
  windowSkipped?: { opensAt: string; closesAt: string; blackoutDate: string; held: boolean };
  /** Install candidates waiting for another resource's work on the same instances (cross-kind lock). */
  lockWait?: { count: number; holder: string };
  /** The install analysis gate (spec.analysis): failed (message), or the next execution waits for it. */
  analysis?: { failed?: string; waiting?: { inconclusive: boolean; message: string } };
}

function reachableOf(s: PatchSummary): number {
  return s.targeted - s.unreachable;
}

/**
 * The Compliant condition: True `AllCompliant` when every reachable target has no missing, failed
 * or pending-reboot patch; False `NonCompliant` with the counts; Unknown `NotScanned` when the rest
 * are compliant but some were never scanned (or none is reachable); Unknown `NoTargets` without
 * targets (zero instances are never reported compliant).
 */
export function compliantCondition(s: PatchSummary): Verdict['ready'] & { type: string } {
  const reachable = reachableOf(s);
  const bad = s.nonCompliant + s.pendingReboot + s.failed;
  if (s.targeted === 0)
    return {
      type: CompliantCondition,
      status: 'Unknown',
      reason: NoTargetsReason,
      message: 'no instance matches spec.targets: nothing was judged compliant',
    };
  if (bad > 0) {
    return {
      type: CompliantCondition,
      status: 'False',
      reason: NonCompliantReason,
      message: `${bad} of ${reachable} reachable instance(s) not compliant: ${s.nonCompliant} missing or failed patches, ${s.pendingReboot} pending reboot, ${s.failed} failed install(s)${s.unscanned > 0 ? `; ${s.unscanned} never scanned` : ''}${s.unreachable > 0 ? `; ${s.unreachable} unreachable` : ''}`,
    };
  }
  if (s.unscanned > 0 || reachable === 0) {
    return {
      type: CompliantCondition,
      status: 'Unknown',
      reason: NotScannedReason,
      message:
        reachable === 0
          ? `all ${s.targeted} targeted instance(s) are unreachable`
          : `${s.unscanned} of ${reachable} reachable instance(s) never scanned; the rest are compliant`,
    };
  }
  return {
    type: CompliantCondition,
    status: 'True',
    reason: AllCompliantReason,
    message: `all ${reachable} reachable instance(s) compliant${s.unreachable > 0 ? `; ${s.unreachable} unreachable` : ''}`,
  };
}

/**
 * The PatchPolicy verdict: Ready says whether the policy is operating (its last scheduled
 * operation finished on every reachable target), Compliant whether the fleet is patched.
 * - no targets → Ready=True `NoTargets`; all unreachable → Ready=False `AllTargetsUnreachable`;
 * - scans / installs running → Ready=False `ScanInProgress` / `InstallInProgress`, Reconciling=True;
 * - the next install execution waits for the analysis of the previous one → Ready=False
 *   `AnalysisInconclusive` (its last measurement was inconclusive) or `InstallInProgress`, with
 *   Reconciling; the analysis stopped the occurrence's installs → `AnalysisFailed` (metric, query,
 *   value, condition) until the next occurrence starts installing;
 * - failed installs → Ready=False `InstallFailed`; a failed last scan → `ScanFailed`;
 * - suspended → Ready=False `Suspended`; otherwise Ready=True `Operating` with the next scan and
 *   window, naming the blackout date that holds the window back (or skips an occurrence before the
 *   next opening).
 */
export function patchPolicyVerdict(f: PatchVerdictFacts): Verdict {
  const s = f.summary;
  const extra = [compliantCondition(s)];
  const notReady = (reason: string, message: string, reconciling = false): Verdict => ({
    ready: { status: 'False', reason, message },
    ...(reconciling ? { reconciling: { reason, message } } : {}),
    extra,
  });
  const reachable = reachableOf(s);
  if (s.targeted === 0)
    return {
      ready: { status: 'True', reason: NoTargetsReason, message: 'no instance matches spec.targets' },
      extra,
    };
  if (reachable === 0 && f.scanning + f.installing === 0)
    return notReady(
      AllTargetsUnreachableReason,
      `all ${s.targeted} targeted instance(s) are unreachable (stopped or Cloud Assistant offline)`,
    );
  if (f.scanning > 0)
    return notReady(ScanInProgressReason, `patch scan running on ${f.scanning} instance(s)`, true);
  if (f.installing > 0)
    return notReady(
      InstallInProgressReason,
      `patch install running on ${f.installing} instance(s); ${s.compliant}/${reachable} compliant`,
      true,
    );
  const gate = f.analysis?.waiting;
  if (gate)
    return notReady(
      gate.inconclusive ? AnalysisInconclusiveReason : InstallInProgressReason,
      `${gate.message}; ${s.compliant}/${reachable} compliant`.slice(0, 2048),
      true,
    );
  if (f.analysis?.failed) return notReady(AnalysisFailedReason, f.analysis.failed.slice(0, 2048));
  if (f.lockWait)
    return notReady(
      WaitingForInstanceLockReason,
      `${f.lockWait.count} instance(s) to patch wait for ${f.lockWait.holder}, which is acting on them`,
      true,
    );
  if (f.failed.length > 0) {
    const named = f.failed
      .slice(0, 3)
      .map((x) => `${x.instanceId}: ${x.message}`)
      .join('; ');
    const more = f.failed.length > 3 ? ` (and ${f.failed.length - 3} more)` : '';
    const next = f.nextWindow ? `; retried in the window opening at ${f.nextWindow}` : '';
    return notReady(
      InstallFailedReason,
      `${f.failed.length} instance(s) failed to install patches: ${named}${more}${next}`.slice(0, 2048),
    );
  }
  if (f.lastScan && (f.lastScan.result === 'Failed' || f.lastScan.result === 'PartiallyFailed'))
    return notReady(ScanFailedReason, f.lastScan.message ?? 'the last patch scan failed');
  if (f.suspended) return notReady(SuspendedReason, 'suspended: no scan or install starts');
  const sk = f.windowSkipped;
  const parts = [
    f.nextScan ? `next scan at ${f.nextScan}` : 'no scan schedule',
    sk?.held
      ? `maintenance window held for blackout date ${sk.blackoutDate} (the occurrence from ${sk.opensAt} to ${sk.closesAt} is skipped)`
      : undefined,
    f.windowOpen
      ? 'maintenance window open'
      : f.nextWindow
        ? `next window opens at ${f.nextWindow}`
        : undefined,
    sk && !sk.held
      ? `the window occurrence opening at ${sk.opensAt} is skipped for blackout date ${sk.blackoutDate}`
      : undefined,
  ].filter(Boolean);
  return { ready: { status: 'True', reason: OperatingReason, message: parts.join('; ') }, extra };
}

/** The install gate's verdict facts: its failure (for the occurrence it stopped) or its wait. */
function analysisFacts(scope: PatchScope): Pick<PatchVerdictFacts, 'analysis'> {
  const stopped = installStopped(scope);
  if (stopped)
    return { analysis: { failed: `install executions stopped by the analysis: ${failureMessage(stopped)}` } };
  const w = scope.gateWait;
  return w ? { analysis: { waiting: { inconclusive: w.inconclusive, message: w.message } } } : {};
}

/** Facts per targeted instance from a reconcile's scope (compliance must be known). */
export function patchFacts(scope: PatchScope): PatchFact[] {
  const installing = new Map<string, string>();
  const scanning = new Map<string, string>();
  for (const w of scope.inFlight) {
    const into = w.action === 'install' ? installing : scanning;
    for (const id of w.instanceIds) into.set(id, w.executionId);
  }
  const mem = scope.memory;
  const states = mem.compliance?.states;
  return scope.targets.map((t) => {
    const f: PatchFact = { instanceId: t.instanceId, reachable: t.reachable };
    if (t.unreachableReason) f.unreachableReason = t.unreachableReason;
    const st = states?.get(t.instanceId);
    if (st) f.state = st;
    const inst = installing.get(t.instanceId);
    if (inst) f.installing = inst;
    const scan = scanning.get(t.instanceId);
    if (scan) f.scanning = scan;
    const failure = scope.ledger.get(t.instanceId);
    if (failure)
      f.failure = {
        message: failure.message,
        ...(failure.executionId ? { executionId: failure.executionId } : {}),
      };
    const sf = mem.scanFailures.get(t.instanceId);
    if (sf) f.scanFailure = sf;
    const patches = mem.compliance?.details.get(t.instanceId);
    if (patches) f.patches = patches;
    const snaps = mem.snapshots.get(t.instanceId);
    if (snaps) f.snapshots = snaps;
    const since = mem.nonCompliantSince.get(t.instanceId);
    if (since) f.nonCompliantSince = since;
    return f;
  });
}

/**
 * The PatchPolicy status for the driver: summary and rows (kept from the previous status when an
 * error came before compliance was known), the schedule and window fields, the operations, tracked
 * executions and failure memory, always written.
 */
export function derivePatchPolicyStatus(
  scope: PatchScope,
  error: ReconcileError | undefined,
  maxRows: number,
): DerivedStatus<PatchPolicyStatus> & { outcome?: Outcome } {
  const { obj } = scope;
  const prev = obj.status ?? {};
  const status: PatchPolicyStatus = { ...prev };
  const stalled = error instanceof StalledError;
  const facts = scope.complianceKnown && !stalled ? patchFacts(scope) : undefined;
  let freshness: { oldestReadAgeSeconds?: number } | undefined;
  if (facts) {
    status.summary = summarizePatches(facts);
    status.instances = patchRows(facts, prev.instances, maxRows, scope.now);
    const fr = readStateFreshness(
      scope.fleet,
      'patches',
      scope.targets.map((t) => t.instanceId),
      prev.stateFreshness,
      driftDetectionOf(obj.spec),
    );
    status.stateFreshness = fr.status;
    freshness =
      fr.oldestReadAgeSeconds !== undefined ? { oldestReadAgeSeconds: fr.oldestReadAgeSeconds } : {};
  }
  if (scope.complianceCheckedAt) status.complianceCheckedAt = scope.complianceCheckedAt;
  writeNodeStatus(status, scope.nodeScreen);
  const setOrDelete = <K extends keyof PatchPolicyStatus>(
    key: K,
    value: PatchPolicyStatus[K] | undefined,
  ) => {
    if (value === undefined) delete status[key];
    else status[key] = value;
  };
  setOrDelete('lastScan', scope.lastScan);
  setOrDelete('lastInstall', scope.lastInstall);
  if (scope.analysis) status.analysis = scope.analysis;
  const traffic = trafficStatusOf(scope.traffic);
  if (traffic) status.trafficControl = traffic;
  else delete status.trafficControl;
  setOrDelete('lastScheduledScanTime', scope.lastScheduledScanTime);
  setOrDelete('lastHandledScanAt', scope.lastHandledScanAt);
  if (!stalled) {
    const next = nextScanAt(scope);
    setOrDelete('nextScan', next ? toMetaTime(next) : undefined);
    const w = scope.window;
    if (w) {
      const cur = w.state.current;
      const sk = w.state.skipped;
      const running = inFlightOf(scope, 'install').length;
      const notes = [
        !w.state.open && running > 0
          ? obj.spec.install?.cancelAtWindowEnd
            ? `window closed; ${running} install execution(s) started inside it are being cancelled`
            : `window closed; ${running} install execution(s) started inside it are left to finish`
          : undefined,
        sk ? describeSkipped(sk, scope.now) : undefined,
      ].filter((n): n is string => n !== undefined);
      status.window = {
        ...(w.name ? { name: w.name } : {}),
        open: w.state.open,
        ...(cur ? { opensAt: toMetaTime(cur.opensAt), closesAt: toMetaTime(cur.closesAt) } : {}),
        ...(w.state.next ? { nextOpen: toMetaTime(w.state.next.opensAt) } : {}),
        ...(sk
          ? {
              skipped: {
                opensAt: toMetaTime(sk.opensAt),
                closesAt: toMetaTime(sk.closesAt),
                blackoutDate: sk.blackoutDate,
              },
            }
          : {}),
        ...(notes.length > 0 ? { message: notes.join('; ') } : {}),
      };
    } else if (!obj.spec.install) delete status.window;
  }
  writeWorkStatus(status, scope.inFlight, scope.sequence, scope.ledger, (a) => a === 'install'); // scans hold no lock (DESIGN §1)
  if (!facts || error) return { status, ...(freshness ? { freshness } : {}) };
  const count = (action: string) =>
    new Set(inFlightOf(scope, action).flatMap((w) => w.instanceIds)).size ||
    inFlightOf(scope, action).reduce((n, w) => n + (w.instanceIds.length || 1), 0);
  const failed = facts
    .filter((f) => patchInstanceState(f) === 'Failed')
    .map((f) => ({ instanceId: f.instanceId, message: f.failure?.message ?? '' }));
  const verdict = patchPolicyVerdict({
    summary: status.summary as PatchSummary,
    scanning: count('scan'),
    installing: count('install'),
    ...(scope.lastScan ? { lastScan: scope.lastScan } : {}),
    suspended: Boolean(obj.spec.suspend),
    failed,
    ...(status.nextScan ? { nextScan: status.nextScan } : {}),
    ...(status.window?.nextOpen ? { nextWindow: status.window.nextOpen } : {}),
    windowOpen: status.window?.open === true,
    ...(status.window?.skipped && scope.window?.state.skipped
      ? { windowSkipped: { ...status.window.skipped, held: isHeld(scope.window.state.skipped, scope.now) } }
      : {}),
    ...(scope.lockWait ? { lockWait: scope.lockWait } : {}),
    ...analysisFacts(scope),
  });
  return {
    status,
    counts: status.summary as Record<string, number>,
    ...(freshness ? { freshness } : {}),
    outcome: { kind: 'verdict', verdict: explainNoTargets(verdict, status.excluded) },
  };
}
