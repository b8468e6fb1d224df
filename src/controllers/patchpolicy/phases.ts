/**
 * PatchPolicy phases (DESIGN §3): each records facts on the {@link PatchScope} and returns, or
 * throws a classified error that ends the reconcile. Cloud side: ECS DescribeInstances /
 * DescribeCloudAssistantStatus (targets), OOS ListExecutions / ListTaskExecutions (tracked
 * executions, through the shared tracker), OOS ListInstancePatchStates (≤ 100 IDs per call) and
 * ListInstancePatches (compliance), ECS DescribeSnapshots (snapshot IDs after installs), OOS
 * StartExecution of ACS-ECS-BulkyApplyPatchBaseline (`action` scan / install, ≤ 50 instances each)
 * and CancelExecution (install.cancelAtWindowEnd).
 */
import type { TrafficScope } from '../shared/traffic.js';
import { RECONCILE_REQUESTED_ANNOTATION } from '../../api/common.js';
import { MaintenanceWindowNotFoundReason, InvalidWindowReason } from '../../api/conditions.js';
import {
  ExecutionsCancelledEvent,
  InstallAction,
  InstallCompletedEvent,
  InstallFailedEvent,
  InstallStartedEvent,
  InstanceUnreachableEvent,
  ScanAction,
  ScanCompletedEvent,
  ScanFailedEvent,
  ScanStartedEvent,
  TrackExecutionAction,
  WindowAction,
  WindowClosedEvent,
  WindowOpenedEvent,
} from '../../api/events.js';
import type { MaintenanceWindow } from '../../api/maintenancewindow.js';
import {
  MAX_ROW_PATCHES,
  SCAN_REQUESTED_ANNOTATION,
  type MissingPatch,
  type PatchOperation,
  type PatchPolicy,
  type SnapshotRef,
} from '../../api/patchpolicy.js';
import type { EcsApi, InstancePatchState, OosApi, RegionFleet } from '../../cloud/index.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { toReconcileError } from '../shared/cloud-errors.js';
import type { AnalysisStatus } from '../../api/analysis.js';
import type { AnalysisRuntime } from '../shared/analysis-run.js';
import type { EventSink, ObjectReader } from '../shared/deps.js';
import { failureMessage } from '../shared/analysis/gate.js';
import { installStopped, reconcileInstallGate } from './analysis.js';
import { intervalMs, type BaseScope } from '../shared/driver.js';
import { driftDetectionOf } from '../shared/freshness.js';
import type { OosExecutionTracker } from '../shared/oos-tracker.js';
import type { FailureLedger } from '../shared/retry.js';
import {
  CronSchedule,
  dueRun,
  MaintenanceWindowSchedule,
  ScheduleError,
  type WindowState,
} from '../shared/schedule.js';
import { scheduleErrorReason } from '../shared/schedule-errors.js';
import {
  listIds,
  recheckReachability,
  resolveTargets,
  targetMaxAgeMs,
  type ResolvedTarget,
} from '../shared/targets.js';
import { lockWaitOf, type InstanceLock } from '../shared/lock.js';
import {
  disruptivePolicy,
  noteKubernetesNodes,
  screenKubernetesNodes,
  type NodeScreen,
} from '../shared/kubernetes-nodes.js';
import { reclassifyUnreachable as reclassify } from '../shared/tracked.js';
import { nextZoneIds, zoneOf } from '../shared/zones.js';
import type { WorkKit } from '../shared/start.js';
import type { FinishedWork, WorkItem } from '../shared/work.js';
import parseDuration from 'parse-duration';

/** Patch statuses read into rows for non-compliant instances (CFG-RULE's list). */
export const NON_COMPLIANT_PATCH_STATUSES = [
  'Missing',
  'Failed',
  'InstalledPendingReboot',
  'InstalledRejected',
];

/** What the last compliance read found, kept between reconciles (per UID, in process). */
export interface LiveCompliance {
  generation: number;
  requested?: string;
  /** When ListInstancePatchStates was last read for every target, ms since the epoch. */
  readAtMs: number;
  /** The target IDs the read covered. */
  ids: Set<string>;
  states: Map<string, InstancePatchState>;
  /** Up to 5 non-compliant patches per instance, for the instances whose details were read. */
  details: Map<string, MissingPatch[]>;
  /** Missing patches by severity over the instances whose details were read. */
  severities: Map<string, number>;
  /** Missing patches by severity per instance whose details were read (reused while its state is unchanged). */
  severitiesOf: Map<string, Map<string, number>>;
}

/** Per-process memory of one PatchPolicy (dropped on errors and deletion). */
export interface PatchMemory {
  compliance?: LiveCompliance;
  /** When the controller first saw each instance non-compliant (RFC 3339). */
  nonCompliantSince: Map<string, string>;
  /** Snapshots taken before the last install on each instance. */
  snapshots: Map<string, SnapshotRef[]>;
  /** Last scan failure message per instance. */
  scanFailures: Map<string, string>;
}

/** Per-process state and dependencies the phases share. */
export interface PatchContext {
  memory: Map<string, PatchMemory>;
  /** The process's cross-kind per-instance lock (absent when this kind runs alone in tests). */
  lock?: InstanceLock;
  /** The kit's start path and tracked-work step (installs take the lock, scans do not). */
  work: WorkKit;
  windows: ObjectReader<MaintenanceWindow>;
  events: EventSink;
  /** Most instances whose patch details (ListInstancePatches) are read per compliance read. */
  maxDetailReads: number;
  /** Runs spec.analysis gates between install executions (analysis.ts). */
  analysis: AnalysisRuntime;
}

/** The install window as resolved for this reconcile. */
export interface ResolvedWindow {
  /** The MaintenanceWindow's name, when referenced. */
  name?: string;
  schedule: MaintenanceWindowSchedule;
  state: WindowState;
  minRemainingMs: number;
}

/** Facts gathered during one PatchPolicy reconcile. */
export interface PatchScope extends BaseScope<PatchPolicy> {
  oos: OosApi;
  /** spec.trafficControl (install executions drain first), or backends left to restore. */
  traffic?: TrafficScope;
  ecs: EcsApi;
  /** The region's shared fleet view (patch states). */
  fleet: RegionFleet;
  tracker: OosExecutionTracker;
  memory: PatchMemory;
  targets: ResolvedTarget[];
  /** Kubernetes nodes among the resolved targets (excluded unless spec.allowKubernetesNodes); set by reconcileTargets. */
  nodeScreen?: NodeScreen;
  /** Work still running after this reconcile's poll (plus any started now). */
  inFlight: WorkItem[];
  /** Set when install candidates wait for another resource's work on the same instances. */
  lockWait?: { count: number; holder: string };
  /** Install failure memory (status.retry); install rounds are gated by windows, not backoff. */
  ledger: FailureLedger;
  sequence: number;
  scanSchedule?: CronSchedule;
  window?: ResolvedWindow;
  /** Executions that finished during this reconcile. */
  finished: FinishedWork[];
  /** True once compliance was read (or taken from fresh memory) this reconcile. */
  complianceKnown: boolean;
  lastScan?: PatchOperation;
  lastInstall?: PatchOperation;
  lastScheduledScanTime?: string;
  lastHandledScanAt?: string;
  complianceCheckedAt?: string;
  /** The gate between install executions (status.analysis; analysis.ts). */
  analysis?: AnalysisStatus;
  /** Set while the next install execution waits for that gate (condition message, requeue). */
  gateWait?: { inconclusive: boolean; message: string; wakeAtMs: number };
}

/** Instances of `work` items of `action` in flight. */
export function inFlightOf(scope: PatchScope, action: string): WorkItem[] {
  return scope.inFlight.filter((w) => w.action === action);
}

function stalledFrom(err: unknown, where: string): never {
  if (err instanceof ScheduleError) {
    throw new StalledError(scheduleErrorReason(err), `${where}.${err.message}`);
  }
  throw err;
}

/**
 * reconcileSchedule parses `spec.scan` and the install window (inline, or the referenced
 * MaintenanceWindow read from its informer cache) and records where the window stands now.
 * Throws StalledError `InvalidSchedule` / `InvalidTimeZone` / `InvalidWindow`, or
 * `MaintenanceWindowNotFound` naming the missing window (re-checked when the window appears).
 */
export function reconcileSchedule(k: PatchContext, scope: PatchScope): void {
  const { spec, metadata } = scope.obj;
  if (spec.scan) {
    try {
      scope.scanSchedule = new CronSchedule(spec.scan.schedule, spec.scan.timeZone ?? 'UTC');
    } catch (err) {
      stalledFrom(err, 'spec.scan');
    }
  }
  const install = spec.install;
  if (!install) return;
  let windowSpec = install.maintenanceWindow;
  let name: string | undefined;
  let where = 'spec.install.maintenanceWindow';
  if (install.maintenanceWindowRef) {
    name = install.maintenanceWindowRef.name;
    const ns = metadata.namespace ?? '';
    const mw = k.windows.get(ns, name);
    if (!mw || mw.metadata.deletionTimestamp) {
      throw new StalledError(
        MaintenanceWindowNotFoundReason,
        `MaintenanceWindow ${ns}/${name} (spec.install.maintenanceWindowRef) not found; create it, or fix the name`,
      );
    }
    windowSpec = mw.spec;
    where = `MaintenanceWindow ${name}: spec`;
  }
  if (!windowSpec) return; // admission requires one of the two forms
  let schedule: MaintenanceWindowSchedule;
  try {
    schedule = new MaintenanceWindowSchedule(windowSpec);
  } catch (err) {
    stalledFrom(err, where);
  }
  const minRemainingMs = parseDuration(install.minRemaining ?? '30m');
  if (typeof minRemainingMs !== 'number' || minRemainingMs < 0 || minRemainingMs >= schedule.durationMs) {
    throw new StalledError(
      InvalidWindowReason,
      `spec.install.minRemaining ${install.minRemaining ?? '30m'} must be shorter than the window's duration ${windowSpec.duration}`,
    );
  }
  scope.window = {
    ...(name !== undefined ? { name } : {}),
    schedule,
    state: schedule.stateAt(scope.now),
    minRemainingMs,
  };
}

/**
 * reconcileTargets resolves spec.targets (throws InstanceNotFound, stalled), drops ACK worker
 * nodes unless spec.allowKubernetesNodes (scans included: see docs/deploy.md "ACK worker nodes"),
 * warns once per change of that set, and forgets failures of instances no longer targeted.
 */
export async function reconcileTargets(k: PatchContext, scope: PatchScope): Promise<void> {
  const { spec } = scope.obj;
  // Instance reads batched with every other resource of the region (at most a minute old; read
  // now for a new generation or a requested reconcile).
  const resolved = await resolveTargets(scope.ecs, spec.regionId, spec.targets, {
    fleet: {
      view: scope.fleet,
      maxAgeMs: targetMaxAgeMs(scope),
      listingMaxAgeMs: intervalMs(scope.obj.spec.interval) / 2,
      ...scope.view,
    },
  });
  scope.nodeScreen = screenKubernetesNodes(resolved, disruptivePolicy(spec));
  scope.targets = scope.nodeScreen.targets;
  noteKubernetesNodes(k.events, scope.obj, scope.obj.status, scope.nodeScreen);
  scope.ledger.retain(new Set(scope.targets.map((t) => t.instanceId)));
}

/**
 * reconcileExecutions is the kind's tracked-work step (the driver runs it before every other
 * phase, on Stalled objects and on the deletion path, which waits out a running install): the kit
 * resolves pending starts, adopts untracked executions of this resource and polls; finished ones
 * are folded: install successes clear
 * failures and record the snapshots taken (ECS DescribeSnapshots per instance); install failures
 * are remembered unless the instance became unreachable or the execution was cancelled (those are
 * simply left for the next window); scan failures are remembered for the rows. Any finished
 * execution makes the next compliance read happen now.
 */
export async function reconcileExecutions(k: PatchContext, scope: PatchScope): Promise<void> {
  const { obj, now } = scope;
  await cancelAtWindowEnd(k, scope); // a safety write: before the poll, whose reads may fail
  dropDrainingAfterClose(k, scope);
  const res = await k.work.reconcile(scope);
  scope.finished = res.finished;
  const installFailed: string[] = [];
  const snapshotted: Array<{ instanceId: string; since: string }> = [];
  const snapshotOn = obj.spec.install?.snapshot?.enabled === true;
  for (const f of res.finished) {
    const op = f.work.action === 'scan' ? scope.lastScan : scope.lastInstall;
    for (const o of f.outcomes) {
      if (op) {
        if (o.ok) op.succeeded = (op.succeeded ?? 0) + 1;
        else if (o.cancelled) op.cancelled = (op.cancelled ?? 0) + 1;
        else op.failed = (op.failed ?? 0) + 1;
      }
      if (f.work.action === 'scan') {
        if (o.ok) scope.memory.scanFailures.delete(o.instanceId);
        else scope.memory.scanFailures.set(o.instanceId, o.message ?? 'scan failed');
        continue;
      }
      if (o.ok) {
        scope.ledger.clear(o.instanceId);
        if (snapshotOn) snapshotted.push({ instanceId: o.instanceId, since: f.work.startTime });
      } else if (o.cancelled || f.status === 'Cancelled') {
        scope.ledger.clear(o.instanceId); // not reached in this window: first in line in the next
      } else {
        installFailed.push(o.instanceId);
        scope.ledger.fail(o.instanceId, {
          message: o.message ?? 'install failed',
          executionId: f.work.executionId,
          since: toMetaTime(now),
          round: f.work.round ?? scope.sequence,
        });
      }
    }
  }
  if (installFailed.length > 0) await reclassifyUnreachable(k, scope, installFailed);
  // Targets were resolved before this poll: an instance rebooting for its patches then looked
  // unreachable; the ones whose install just succeeded are re-read so rows show them as they are.
  const installed = new Set(
    res.finished
      .filter((f) => f.work.action === 'install')
      .flatMap((f) => f.outcomes.filter((o) => o.ok).map((o) => o.instanceId)),
  );
  const stale = scope.targets
    .filter((t) => !t.reachable && installed.has(t.instanceId))
    .map((t) => t.instanceId);
  if (stale.length > 0) {
    const fresh = await recheckReachability(scope.ecs, stale);
    scope.targets = scope.targets.map((t) => {
      const r = fresh.get(t.instanceId);
      return r && 'instance' in r ? r : t;
    });
  }
  if (snapshotted.length > 0) await readSnapshots(scope, snapshotted);
}

/**
 * Install items that failed because the instance stopped or lost its Cloud Assistant agent are
 * not Failed: the instance is left for the next window (and shown Unreachable).
 */
async function reclassifyUnreachable(k: PatchContext, scope: PatchScope, failed: string[]): Promise<void> {
  const { targets, gone } = await reclassify(scope.ecs, scope.ledger, scope.targets, failed);
  scope.targets = targets;
  if (gone.length > 0) {
    void k.events.event(
      scope.obj,
      'Normal',
      InstanceUnreachableEvent,
      TrackExecutionAction,
      `${gone.length} instance(s) became unreachable during their install and are left for the next window: ${listIds(gone)}`,
    );
  }
}

/** Records the snapshots each instance got before its install (ECS DescribeSnapshots by instance). */
async function readSnapshots(
  scope: PatchScope,
  items: ReadonlyArray<{ instanceId: string; since: string }>,
): Promise<void> {
  const retentionDays = scope.obj.spec.install?.snapshot?.retentionDays ?? 7;
  try {
    await Promise.all(
      items.map(async ({ instanceId, since }) => {
        const list = await scope.ecs.describeSnapshots({ instanceId });
        const sinceMs = Date.parse(since) - 60_000;
        const refs = list
          .filter((s) => s.creationTime && Date.parse(s.creationTime) >= sinceMs && s.status !== 'failed')
          .sort((a, b) => ((a.creationTime ?? '') < (b.creationTime ?? '') ? 1 : -1))
          .slice(0, 4)
          .map((s): SnapshotRef => {
            const created = Date.parse(s.creationTime ?? '');
            const days = s.retentionDays ?? retentionDays;
            return {
              snapshotId: s.snapshotId,
              ...(Number.isFinite(created) ? { createdAt: toMetaTime(new Date(created)) } : {}),
              ...(Number.isFinite(created) && days > 0
                ? { expiresAt: toMetaTime(new Date(created + days * 86_400_000)) }
                : {}),
            };
          });
        if (refs.length > 0) scope.memory.snapshots.set(instanceId, refs);
      }),
    );
  } catch (err) {
    throw toReconcileError(err, 'ECS DescribeSnapshots');
  }
}

function isNonCompliant(s: InstancePatchState): boolean {
  return s.missingCount > 0 || s.failedCount > 0 || s.installedPendingRebootCount > 0;
}

/** Normalised severity label (bounded set for metrics). */
export function severityLabel(severity: string | undefined): string {
  const s = (severity ?? '').toLowerCase();
  for (const known of ['Critical', 'Important', 'Moderate', 'Low'])
    if (s === known.toLowerCase()) return known;
  return s === '' ? 'Unspecified' : 'Other';
}

/**
 * reconcileCompliance knows the patch state of every target. It re-reads OOS
 * ListInstancePatchStates (batches of 100) on the first visit, after a spec change or reconcile
 * request, after any execution finished, and once `spec.interval` has passed; otherwise it uses the
 * last read. Each read also lists up to 5 non-compliant patches (OOS ListInstancePatches with a
 * PatchStatuses filter) for at most `maxDetailReads` non-compliant instances, the ones shown first
 * in the rows. Tracks since when each instance is non-compliant.
 */
export async function reconcileCompliance(k: PatchContext, scope: PatchScope): Promise<void> {
  const { metadata, spec } = scope.obj;
  const mem = scope.memory;
  const requested = metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
  const cached = mem.compliance;
  const ids = scope.targets.map((t) => t.instanceId);
  const fresh =
    cached !== undefined &&
    cached.generation === (metadata.generation ?? 0) &&
    cached.requested === requested &&
    scope.finished.length === 0 &&
    scope.now.getTime() - cached.readAtMs < intervalMs(spec.interval) &&
    ids.every((id) => cached.ids.has(id));
  if (fresh) {
    scope.complianceKnown = true;
    scope.complianceCheckedAt = scope.obj.status?.complianceCheckedAt;
    return;
  }
  // Through the region's fleet view: patch states another policy read recently are shared; those of
  // instances a scan or install just finished on are re-read; a reconcile request forces a read.
  const fleet = scope.fleet;
  for (const f of scope.finished) for (const id of f.work.instanceIds) fleet.invalidatePatchState(id);
  const maxAgeMs =
    requested !== undefined && requested !== scope.obj.status?.lastHandledReconcileAt
      ? 0
      : intervalMs(spec.interval) / 2;
  const byId = new Map<string, InstancePatchState>();
  /** The fleet answered a state object it did not have at the last check: something was read. */
  let reread = cached === undefined;
  try {
    const read = await fleet.patchStates(ids, {
      maxAgeMs,
      driftDetection: driftDetectionOf(spec),
      ...scope.view,
    });
    for (const [id, st] of read) {
      if (st) byId.set(id, st);
      if (cached?.states.get(id) !== st) reread = true;
    }
  } catch (err) {
    throw toReconcileError(err, 'OOS ListInstancePatchStates');
  }
  const details = new Map<string, MissingPatch[]>();
  const severities = new Map<string, number>();
  const nonCompliant = ids.filter((id) => {
    const s = byId.get(id);
    return s !== undefined && isNonCompliant(s);
  });
  const severitiesOf = new Map<string, Map<string, number>>();
  // Details of an instance whose patch state the fleet did not re-read are still true: reused.
  const detailed = nonCompliant.slice(0, k.maxDetailReads);
  const toRead = detailed.filter((id) => {
    const same = cached?.states.get(id) === byId.get(id) && cached?.details.has(id);
    const sev = same ? cached?.severitiesOf.get(id) : undefined;
    if (!same || !sev) return true;
    details.set(id, cached?.details.get(id) ?? []);
    severitiesOf.set(id, sev);
    return false;
  });
  try {
    await Promise.all(
      toRead.map(async (id) => {
        const patches = await scope.oos.listInstancePatches(id, NON_COMPLIANT_PATCH_STATUSES);
        const sevs = new Map<string, number>();
        for (const p of patches) {
          if (p.status !== 'Missing') continue;
          const sev = severityLabel(p.severity);
          sevs.set(sev, (sevs.get(sev) ?? 0) + 1);
        }
        severitiesOf.set(id, sevs);
        details.set(
          id,
          patches.slice(0, MAX_ROW_PATCHES).map((p) => ({
            title: sanitizeText(p.title).slice(0, 256),
            ...(p.kbId ? { kbId: p.kbId.slice(0, 128) } : {}),
            ...(p.classification ? { classification: p.classification.slice(0, 64) } : {}),
            ...(p.severity ? { severity: p.severity.slice(0, 64) } : {}),
            status: p.status.slice(0, 64),
          })),
        );
      }),
    );
  } catch (err) {
    throw toReconcileError(err, 'OOS ListInstancePatches');
  }
  for (const sevs of severitiesOf.values())
    for (const [sev, n] of sevs) severities.set(sev, (severities.get(sev) ?? 0) + n);
  // Missing patches of instances whose details were not read are counted by severity Unknown.
  const unread = nonCompliant
    .slice(k.maxDetailReads)
    .reduce((n, id) => n + (byId.get(id)?.missingCount ?? 0), 0);
  if (unread > 0) severities.set('Unknown', unread);
  const nowIso = toMetaTime(scope.now);
  for (const id of ids) {
    const s = byId.get(id);
    if (s && isNonCompliant(s)) {
      if (!mem.nonCompliantSince.has(id)) mem.nonCompliantSince.set(id, nowIso);
    } else mem.nonCompliantSince.delete(id);
  }
  mem.compliance = {
    generation: metadata.generation ?? 0,
    requested,
    readAtMs: scope.now.getTime(),
    ids: new Set(ids),
    states: byId,
    details,
    severities,
    severitiesOf,
  };
  scope.complianceKnown = true;
  // Moves only when a state was read: a check the change feed answered from the view writes nothing.
  scope.complianceCheckedAt = reread ? nowIso : (scope.obj.status?.complianceCheckedAt ?? nowIso);
}

/**
 * Starts `action` on `ids` through the kit as one round (batches of ≤ 50, each with its own
 * ClientToken): installs take the per-instance lock (instances another resource holds wait and are
 * recorded in `scope.lockWait`), scans do not. At most `limit` free instances start, in `ids` order;
 * `onIntent` runs just before the intent is written (see `WorkKit.start`).
 * @returns the started work, and batches still being drained (spec.trafficControl; no ID yet).
 * @throws ReconcileError from the kit (started batches stay tracked; a failed one stays pending).
 */
async function startRound(
  k: PatchContext,
  scope: PatchScope,
  action: 'scan' | 'install',
  ids: readonly string[],
  limit?: number,
  onIntent?: (items: readonly WorkItem[]) => void,
): Promise<WorkItem[]> {
  scope.sequence += 1;
  const before = scope.inFlight.length;
  const out = await k.work.start(
    scope,
    { round: scope.sequence, action, instanceIds: ids, describe: `patch ${action}` },
    { ...(limit !== undefined ? { limit } : {}), ...(onIntent ? { onIntent } : {}) },
  );
  if (scope.inFlight.length === before) scope.sequence -= 1; // nothing started: no round
  scope.lockWait = lockWaitOf(out.held) ?? scope.lockWait;
  // spec.trafficControl: batches being drained start later, with the same ClientToken.
  return [...out.started, ...out.draining];
}

function operationRef(items: readonly WorkItem[]): Pick<PatchOperation, 'executionCount' | 'executionIds'> {
  return { executionCount: items.length, executionIds: items.slice(0, 10).map((w) => w.executionId) };
}

/**
 * Whether a scan is due, the controller's rule (shared with `ecsops plan`): `byRequest` when the
 * `ecsops.io/scan-requested-at` annotation has a value not handled yet (`status.lastHandledScanAt`)
 * and there is a target (a requested scan is not spent on nothing); `scheduled`, the scheduled time
 * of the due run (see {@link dueRun}) after the later of the object's creation and the last
 * scheduled scan handled (`status.lastScheduledScanTime`, RFC 3339). Pure; never throws.
 */
export function scanDue(o: {
  requested: string | undefined;
  lastHandledScanAt: string | undefined;
  targets: number;
  schedule?: CronSchedule;
  creationTimestamp: Date | string | undefined;
  lastScheduledScanTime: string | undefined;
  now: Date;
}): { byRequest: boolean; scheduled?: Date } {
  const byRequest = o.requested !== undefined && o.requested !== o.lastHandledScanAt && o.targets > 0;
  if (!o.schedule) return { byRequest };
  const created = Date.parse(String(o.creationTimestamp ?? '')) || o.now.getTime();
  const handled = o.lastScheduledScanTime ? Date.parse(o.lastScheduledScanTime) : created;
  const scheduled = dueRun(o.schedule, o.now, new Date(Math.max(created, handled)));
  return scheduled ? { byRequest, scheduled } : { byRequest };
}

/**
 * reconcileScan starts a scan of every reachable target (OOS executions of ≤ 50) when one is due:
 * the `ecsops.io/scan-requested-at` annotation has a value not handled yet, or a scheduled run is
 * due (the latest run at or before now and after the last one handled or the object's creation —
 * so a scan missed during downtime runs once, never a burst). Waits while any execution runs;
 * nothing starts while writes are off (suspend).
 */
export async function reconcileScan(k: PatchContext, scope: PatchScope): Promise<void> {
  const { obj, now } = scope;
  if (!scope.writesAllowed || scope.inFlight.length > 0) return;
  const requested = obj.metadata.annotations?.[SCAN_REQUESTED_ANNOTATION];
  const { byRequest, scheduled } = scanDue({
    requested,
    lastHandledScanAt: scope.lastHandledScanAt,
    targets: scope.targets.length,
    ...(scope.scanSchedule ? { schedule: scope.scanSchedule } : {}),
    creationTimestamp: obj.metadata.creationTimestamp,
    lastScheduledScanTime: scope.lastScheduledScanTime,
    now,
  });
  if (!byRequest && !scheduled) return;
  if (scheduled) scope.lastScheduledScanTime = toMetaTime(scheduled);
  if (byRequest) scope.lastHandledScanAt = requested;
  const trigger = byRequest ? 'Requested' : 'Schedule';
  const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
  const op: PatchOperation = {
    trigger,
    ...(scheduled ? { scheduledTime: toMetaTime(scheduled) } : {}),
    startTime: toMetaTime(now),
    result: 'Running',
    instances: reachable.length,
    succeeded: 0,
    failed: 0,
  };
  scope.lastScan = op;
  if (reachable.length === 0) {
    Object.assign(op, { result: 'Failed', endTime: op.startTime, message: 'no reachable target to scan' });
    return;
  }
  const started = await startRound(k, scope, 'scan', reachable);
  Object.assign(op, operationRef(started));
  void k.events.event(
    obj,
    'Normal',
    ScanStartedEvent,
    ScanAction,
    `${trigger === 'Requested' ? 'Requested' : `Scheduled (${op.scheduledTime})`} patch scan started on ${reachable.length} instance(s) in ${started.length} execution(s)`,
  );
}

/** Last install time of an instance from its patch state (OperationType install), ms; 0 when never. */
function lastInstallMs(s: InstancePatchState | undefined): number {
  if (!s || s.operationType !== 'install') return 0;
  return Date.parse(s.operationEndTime ?? s.operationStartTime ?? '') || 0;
}

/**
 * The instances an install may still start on in the current window occurrence, least recently
 * patched first: reachable, not in flight, not already installed or failed in this occurrence
 * (patch state OperationType install since it opened, or a failure recorded since), and not
 * compliant by a scan that finished less than `spec.interval` before the occurrence opened (or
 * since). Compliant targets with an older scan are included: the template scans before it
 * installs. Pending-reboot-only instances qualify only with rebootIfNeeded.
 */
export function installCandidates(scope: PatchScope, opensAt: Date): string[] {
  const states = scope.memory.compliance?.states ?? new Map<string, InstancePatchState>();
  const busy = new Set(scope.inFlight.flatMap((w) => w.instanceIds));
  const reboot = scope.obj.spec.install?.rebootIfNeeded === true;
  const period = intervalMs(scope.obj.spec.interval);
  const open = opensAt.getTime();
  const out: Array<{ id: string; last: number }> = [];
  for (const t of scope.targets) {
    if (!t.reachable || busy.has(t.instanceId)) continue;
    const s = states.get(t.instanceId);
    const failure = scope.ledger.get(t.instanceId);
    if (failure && Date.parse(failure.since) >= open) continue;
    if (s && s.operationType === 'install' && Date.parse(s.operationStartTime ?? '') >= open) continue;
    if (s) {
      const needs = s.missingCount > 0 || s.failedCount > 0 || (reboot && s.installedPendingRebootCount > 0);
      const scannedAt = Date.parse(s.operationEndTime ?? '') || 0;
      if (!needs && (s.installedPendingRebootCount > 0 || scannedAt >= open - period)) continue;
    }
    out.push({ id: t.instanceId, last: lastInstallMs(s) });
  }
  out.sort((a, b) => a.last - b.last || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out.map((x) => x.id);
}

/**
 * reconcileWindow emits WindowOpened / WindowClosed when the window's state changed since the
 * last status, and at the close cancels running install executions when
 * `install.cancelAtWindowEnd` (OOS CancelExecution); otherwise they are left to finish.
 */
export async function reconcileWindowEdges(k: PatchContext, scope: PatchScope): Promise<void> {
  const w = scope.window;
  if (!w) return;
  const wasOpen = scope.obj.status?.window?.open === true;
  const prevOpensAt = scope.obj.status?.window?.opensAt;
  const opensAt = w.state.current ? toMetaTime(w.state.current.opensAt) : undefined;
  if (w.state.open && (!wasOpen || prevOpensAt !== opensAt)) {
    void k.events.event(
      scope.obj,
      'Normal',
      WindowOpenedEvent,
      WindowAction,
      `maintenance window${w.name ? ` ${w.name}` : ''} opened at ${opensAt}, closes at ${toMetaTime(w.state.current?.closesAt ?? scope.now)}`,
    );
  }
  if (!w.state.open && wasOpen) {
    // The cancel itself is level-triggered (cancelAtWindowEnd, before the poll); this is the Event.
    const running = inFlightOf(scope, 'install').filter((w) => !w.pending);
    let note = 'no new install batch starts';
    if (running.length > 0 && scope.obj.spec.install?.cancelAtWindowEnd) {
      note = `${running.length} running install execution(s) cancelled`;
    } else if (running.length > 0) {
      note = `${running.length} running install execution(s) are left to finish`;
    }
    void k.events.event(
      scope.obj,
      'Normal',
      WindowClosedEvent,
      WindowAction,
      `maintenance window${w.name ? ` ${w.name}` : ''} closed; ${note}`,
    );
  }
}

/**
 * cancelAtWindowEnd (level-triggered; `install.cancelAtWindowEnd`): while install executions of a
 * window occurrence that has closed are tracked, sends OOS CancelExecution for each — also while
 * `suspend: true` (stopping work is a safety write) and before this reconcile's reads, so a
 * throttled read at the close cannot delay it. `lastInstall.cancelRequestedAt` is recorded only
 * once every cancel was answered; until then each reconcile sends them again (CancelExecution is
 * naturally idempotent).
 * @throws ReconcileError from CancelExecution (nothing recorded; the next reconcile retries).
 */
export async function cancelAtWindowEnd(k: PatchContext, scope: PatchScope): Promise<void> {
  const op = scope.lastInstall;
  const running = scope.inFlight.filter((w) => w.action === 'install' && !w.pending && w.executionId);
  if (!scope.obj.spec.install?.cancelAtWindowEnd || running.length === 0 || op?.cancelRequestedAt) return;
  try {
    reconcileSchedule(k, scope); // the window, before the phases compute it
  } catch {
    return; // a window that cannot be read (Stalled): nothing is judged closed
  }
  const current = scope.window?.state.current;
  const opensAt = op?.windowOpensAt ?? (current ? toMetaTime(current.opensAt) : undefined);
  if (current && toMetaTime(current.opensAt) === opensAt) return; // the occurrence is still open
  try {
    for (const w of running) await scope.oos.cancelExecution(w.executionId);
  } catch (err) {
    throw toReconcileError(err, 'OOS CancelExecution');
  }
  if (op) op.cancelRequestedAt = toMetaTime(scope.now);
  void k.events.event(
    scope.obj,
    'Normal',
    ExecutionsCancelledEvent,
    WindowAction,
    `cancelled ${running.length} install execution(s) at the window's end: ${listIds(running.map((r) => r.executionId))}`,
  );
}

/**
 * spec.trafficControl: an install execution still draining its instances (pending, never sent)
 * when its window occurrence has closed, or has less than `install.minRemaining` left, is dropped
 * and never sent; the kit then puts its instances back into rotation (traffic.ts).
 */
function dropDrainingAfterClose(k: PatchContext, scope: PatchScope): void {
  const draining = scope.inFlight.filter((w) => w.action === 'install' && w.trafficPhase === 'Draining');
  if (draining.length === 0) return;
  try {
    reconcileSchedule(k, scope);
  } catch {
    // A window that cannot be read (Stalled): nothing can say it is open, so nothing is sent.
    scope.inFlight = scope.inFlight.filter((w) => !draining.includes(w));
    return;
  }
  const current = scope.window?.state.current;
  const left = current ? current.closesAt.getTime() - scope.now.getTime() : -1;
  if (left >= (scope.window?.minRemainingMs ?? 0)) return;
  scope.inFlight = scope.inFlight.filter((w) => !draining.includes(w));
}

/**
 * reconcileInstall starts install executions (≤ 50 instances each, at most
 * `install.parallelBatches` running) on {@link installCandidates} while the window is open with at
 * least `install.minRemaining` left, writes are allowed and no scan runs. With
 * `install.zoneOrder` they go zone by zone ({@link nextZoneIds}): one zone per execution, and the
 * next zone only once the running zone's executions finished. With `spec.analysis`, executions
 * run one at a time and each next one waits for the analysis gate of the previous one
 * (analysis.ts), which may stop the occurrence's installs. Records the window occurrence's install
 * in `lastInstall`.
 */
export async function reconcileInstall(k: PatchContext, scope: PatchScope): Promise<void> {
  const { obj, now } = scope;
  const install = obj.spec.install;
  const current = scope.window?.state.current;
  if (!install || !current || !scope.writesAllowed || !scope.complianceKnown) return;
  if (inFlightOf(scope, 'scan').length > 0) return;
  if (current.closesAt.getTime() - now.getTime() < (scope.window?.minRemainingMs ?? 0)) return;
  const gated = obj.spec.analysis !== undefined;
  const slots = (gated ? 1 : (install.parallelBatches ?? 1)) - inFlightOf(scope, 'install').length;
  if (slots <= 0) return;
  const candidates = installCandidates(scope, current.opensAt);
  if (candidates.length === 0) return;
  const opensAt = toMetaTime(current.opensAt);
  if ((await reconcileInstallGate(k, scope, opensAt)) !== 'go') return;
  const first = scope.lastInstall?.windowOpensAt !== opensAt;
  // The occurrence's record is created with the intent of its first start (never when nothing starts).
  // install.zoneOrder: executions take instances of one zone only, zone after zone.
  const next = nextZoneIds(
    candidates,
    zoneOf(scope.targets),
    install.zoneOrder,
    inFlightOf(scope, 'install').flatMap((w) => w.instanceIds),
  );
  if (next.length === 0) return; // the running zone's executions finish first
  const countBefore = first ? 0 : (scope.lastInstall?.executionCount ?? 0);
  const started = await startRound(k, scope, 'install', next, slots * scope.tracker.batchSize, (items) => {
    if (first) {
      scope.lastInstall = {
        trigger: 'Window',
        windowOpensAt: opensAt,
        startTime: toMetaTime(now),
        result: 'Running',
        instances: 0,
        succeeded: 0,
        failed: 0,
        executionCount: 0,
        executionIds: [],
      };
    }
    // With a gate, which execution ran last must survive a restart between the intent write and
    // the send's status write: the gate of execution k is keyed by the count and its instances.
    const op = scope.lastInstall;
    if (gated && op) {
      op.executionCount = countBefore + items.length;
      op.lastExecutionInstanceIds = items.flatMap((w) => w.instanceIds).slice(0, 50);
    }
  });
  const op = scope.lastInstall;
  if (started.length === 0 || !op) return; // every candidate held by another resource
  const ids = [...(op.executionIds ?? []), ...started.map((w) => w.executionId).filter((id) => id !== '')];
  Object.assign(op, {
    result: 'Running',
    instances: (op.instances ?? 0) + started.reduce((n, w) => n + w.instanceIds.length, 0),
    executionCount: countBefore + started.length,
    executionIds: ids.slice(0, 10),
  });
  delete op.endTime;
  if (first) {
    void k.events.event(
      obj,
      'Normal',
      InstallStartedEvent,
      InstallAction,
      `patch install started in the window opened at ${opensAt}: ${candidates.length} instance(s) to patch, first ${started.length} execution(s) of ≤ ${scope.tracker.batchSize}`,
    );
  }
}

/**
 * reconcileOperations closes `lastScan` / `lastInstall` once none of their executions runs (and,
 * for installs, once nothing more will start in this occurrence), and emits ScanCompleted /
 * ScanFailed / InstallCompleted / InstallFailed once.
 */
export function reconcileOperations(k: PatchContext, scope: PatchScope): void {
  const finish = (op: PatchOperation | undefined, action: 'scan' | 'install', more: boolean) => {
    if (!op || op.result !== 'Running' || inFlightOf(scope, action).length > 0 || more) return;
    const failed = op.failed ?? 0;
    const ok = op.succeeded ?? 0;
    const cancelled =
      (op.cancelled ?? 0) > 0 ||
      scope.finished.some((f) => f.work.action === action && f.status === 'Cancelled');
    op.result =
      failed === 0 ? (cancelled ? 'Cancelled' : 'Succeeded') : ok > 0 ? 'PartiallyFailed' : 'Failed';
    const stopped = action === 'install' ? installStopped(scope) : undefined;
    if (stopped) op.result = 'Failed'; // the analysis stopped the occurrence's installs
    op.endTime = toMetaTime(scope.now);
    const label = action === 'scan' ? 'patch scan' : 'patch install';
    const good = op.result === 'Succeeded' || op.result === 'Cancelled';
    const notRun = (op.cancelled ?? 0) > 0 ? `, ${op.cancelled} cancelled at the window's end` : '';
    const done = `${label} ${op.result.toLowerCase()}: ${ok} instance(s) succeeded, ${failed} failed${notRun}`;
    const halted = `${label} stopped by its analysis: ${ok} instance(s) succeeded, ${failed} failed`;
    op.message = stopped ? `${halted}; ${failureMessage(stopped)}`.slice(0, 1024) : done;
    const reason =
      action === 'scan'
        ? good
          ? ScanCompletedEvent
          : ScanFailedEvent
        : good
          ? InstallCompletedEvent
          : InstallFailedEvent;
    void k.events.event(
      scope.obj,
      good ? 'Normal' : 'Warning',
      reason,
      action === 'scan' ? ScanAction : InstallAction,
      op.message,
    );
  };
  finish(scope.lastScan, 'scan', false);
  // An install occurrence is over when nothing runs and nothing more can start in the window.
  const w = scope.window;
  const canStart =
    !!w?.state.current &&
    w.state.current.closesAt.getTime() - scope.now.getTime() >= w.minRemainingMs &&
    scope.writesAllowed &&
    !installStopped(scope) &&
    installCandidates(scope, w.state.current.opensAt).length > 0;
  finish(scope.lastInstall, 'install', canStart);
}

/** Milliseconds until the next scheduled scan (undefined without a schedule). */
export function nextScanAt(scope: PatchScope): Date | undefined {
  return scope.scanSchedule?.next(scope.now);
}
