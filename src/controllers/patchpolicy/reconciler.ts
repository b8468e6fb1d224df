/**
 * PatchPolicy reconciler (DESIGN §1/§3) on the shared kit: the {@link ReconcileDriver} runs the
 * preamble, gates and the one status write; this file lists the phases ({@link ./phases.ts}) and
 * the status derivation ({@link ./status.ts}), builds the OOS tracker for
 * ACS-ECS-BulkyApplyPatchBaseline and reports the `ecsops_patch_*` metrics.
 */
import { trafficScopeOf } from '../shared/traffic.js';
import {
  InvalidSecretValueReason,
  MaintenanceWindowNotFoundReason,
  SecretForbiddenReason,
  SecretNotFoundReason,
} from '../../api/conditions.js';
import type { MaintenanceWindow } from '../../api/maintenancewindow.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  PATCH_POLICY_KIND,
  type PatchPolicy,
  type PatchPolicySpec,
} from '../../api/patchpolicy.js';
import type { CloudClients } from '../../cloud/types.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import type { ReconcileError } from '../../runtime/errors.js';
import { checkAnalysisSpec, prometheusQueryFns, type QueryFnFactory } from '../shared/analysis-run.js';
import type { ControllerMetrics, EventSink, KubeWriter, ObjectReader } from '../shared/deps.js';
import type { SecretReader } from '../shared/secrets.js';
import {
  intervalMs,
  ReconcileDriver,
  type BaseScope,
  type DriverOptions,
  type KindHooks,
} from '../shared/driver.js';
import { oosRateControl } from '../shared/execution.js';
import type { InstanceLock } from '../shared/lock.js';
import { OosExecutionTracker } from '../shared/oos-tracker.js';
import { WorkKit } from '../shared/start.js';
import { FailureLedger } from '../shared/retry.js';
import { fromTracked, pollDelayMs } from '../shared/work.js';
import type { PatchMetrics } from './metrics.js';
import {
  nextScanAt,
  reconcileCompliance,
  reconcileExecutions,
  reconcileInstall,
  reconcileOperations,
  reconcileScan,
  reconcileSchedule,
  reconcileTargets,
  reconcileWindowEdges,
  type PatchContext,
  type PatchMemory,
  type PatchScope,
} from './phases.js';
import { derivePatchPolicyStatus } from './status.js';

export interface PatchPolicyOptions extends DriverOptions {
  /** Bound on status.instances rows. Default 100. */
  maxInstanceRows: number;
  /** Poll delay for running executions, milliseconds: grows from min to max with execution age. */
  pollMinMs: number;
  pollMaxMs: number;
  stalledRecheckMs: number;
  /** Most non-compliant instances whose patches (ListInstancePatches) are read per compliance read. */
  maxDetailReads: number;
}

export const defaultPatchPolicyOptions: PatchPolicyOptions = {
  maxInstanceRows: 100,
  pollMinMs: 5_000,
  pollMaxMs: 60_000,
  stalledRecheckMs: 10 * 60_000,
  maxDetailReads: 100,
};

export interface PatchPolicyDeps {
  objects: ObjectReader<PatchPolicy>;
  kube: KubeWriter<PatchPolicy>;
  /** MaintenanceWindow objects (informer cache) for spec.install.maintenanceWindowRef. */
  windows: ObjectReader<MaintenanceWindow>;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  /** `ecsops_patch_*` gauges; optional in tests. */
  patchMetrics?: PatchMetrics;
  now?: () => Date;
  options?: Partial<PatchPolicyOptions>;
  /** The process's cross-kind per-instance lock. */
  lock?: InstanceLock;
  /** Reads the Secrets of spec.analysis.prometheus (bearer token, CA); absent: such a policy is Stalled. */
  secrets?: SecretReader;
  /** Builds the query function of spec.analysis (tests: a fake). Default: the Prometheus HTTP client. */
  analysisQuery?: QueryFnFactory;
}

/** Template parameters of one ACS-ECS-BulkyApplyPatchBaseline batch (API reference §5.2). */
export function patchParameters(
  spec: PatchPolicySpec,
  batch: readonly string[],
  action: string,
): Record<string, unknown> {
  const params: Record<string, unknown> = {
    action,
    targets: { Type: 'ResourceIds', RegionId: spec.regionId, ResourceIds: batch },
    rateControl: oosRateControl(spec.rateControl),
  };
  if (action === 'install') {
    params.whetherCreateSnapshot = spec.install?.snapshot?.enabled === true;
    params.retentionDays = spec.install?.snapshot?.retentionDays ?? 7;
    params.rebootIfNeed = spec.install?.rebootIfNeeded === true;
  }
  return params;
}

/** The PatchPolicy reconciler: the shared driver with this kind's hooks. */
export class PatchPolicyReconciler implements Reconciler {
  private readonly driver: ReconcileDriver<PatchPolicy, PatchScope>;
  private readonly opts: PatchPolicyOptions;
  private readonly k: PatchContext;

  constructor(private readonly deps: PatchPolicyDeps) {
    this.opts = { ...defaultPatchPolicyOptions, ...deps.options };
    this.k = {
      memory: new Map(),
      windows: deps.windows,
      events: deps.events,
      maxDetailReads: this.opts.maxDetailReads,
      analysis: { queryFn: deps.analysisQuery ?? prometheusQueryFns(deps.secrets), metrics: deps.metrics },
      ...(deps.lock ? { lock: deps.lock } : {}),
      // DESIGN §1: installs take the per-instance lock; scans only read.
      work: new WorkKit({
        ...(deps.lock ? { lock: deps.lock } : {}),
        locking: (action) => action === 'install',
      }),
    };
    const k = this.k;
    const hooks: KindHooks<PatchPolicy, PatchScope> = {
      kind: PATCH_POLICY_KIND,
      writesAllowed: (obj) => !obj.spec.suspend,
      newScope: (base) => this.newScope(base),
      work: { reconcile: (s) => reconcileExecutions(k, s), inFlight: (s) => s.inFlight.length },
      phases: [
        async (s) => reconcileSchedule(k, s),
        async (s) => checkAnalysisSpec(s.obj.spec.analysis), // before an install it could not gate
        (s) => reconcileTargets(k, s),
        (s) => reconcileCompliance(k, s),
        (s) => reconcileWindowEdges(k, s),
        (s) => reconcileScan(k, s),
        (s) => reconcileInstall(k, s),
        async (s) => reconcileOperations(k, s),
      ],
      // Nothing to undo in the cloud: patches stay installed, snapshots expire by retentionDays.
      // The driver waits out a running scan or install (and keeps its lock) before this.
      reconcileDelete: async () => ({ done: true }),
      deriveStatus: (s, err) => this.deriveStatus(s, err),
      requeueAfterMs: (s) => this.requeueAfter(s),
      forget: (uid, gone) => {
        // The memory is not a cache (when each instance first lacked patches, the compliance
        // counts of the metrics): a failed reconcile keeps it; only a gone object drops it.
        if (!gone) return;
        k.memory.delete(uid);
        k.lock?.release(uid);
      },
      recheckedStalledReasons: [
        MaintenanceWindowNotFoundReason,
        SecretNotFoundReason,
        SecretForbiddenReason,
        InvalidSecretValueReason,
      ],
    };
    const metrics: ControllerMetrics = {
      executionStarted: (t, a) => deps.metrics.executionStarted(t, a),
      executionFinished: (t, s) => deps.metrics.executionFinished(t, s),
      setInstanceCounts: (kind, ns, name, counts) => deps.metrics.setInstanceCounts(kind, ns, name, counts),
      setConditions: (kind, ns, name, conditions) => deps.metrics.setConditions(kind, ns, name, conditions),
      setOldestReadAge: (kind, ns, name, s) => deps.metrics.setOldestReadAge?.(kind, ns, name, s),
      setDrainedBackends: (kind, ns, name, n) => deps.metrics.setDrainedBackends?.(kind, ns, name, n),
      deleteResource: (kind, ns, name) => {
        deps.metrics.deleteResource(kind, ns, name);
        deps.patchMetrics?.delete(ns, name);
      },
    };
    this.driver = new ReconcileDriver(
      hooks,
      {
        objects: deps.objects,
        kube: deps.kube,
        events: deps.events,
        metrics,
        ...(deps.now ? { now: deps.now } : {}),
      },
      this.opts,
    );
  }

  /** Reconciles one PatchPolicy by key (see the driver). */
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    return this.driver.reconcile(req, ctx);
  }

  /** Namespace/name of every cached PatchPolicy that references MaintenanceWindow `ns/name`. */
  referencing(ns: string, name: string): Array<{ namespace: string; name: string }> {
    return this.deps.objects
      .list()
      .filter((p) => p.metadata.namespace === ns && p.spec.install?.maintenanceWindowRef?.name === name)
      .map((p) => ({ namespace: ns, name: p.metadata.name ?? '' }));
  }

  private newScope(base: BaseScope<PatchPolicy>): PatchScope {
    const { obj, view } = base;
    const { spec, status } = obj;
    const oos = this.deps.cloud.oos(spec.regionId, view);
    const fleet = this.deps.cloud.fleet(spec.regionId);
    const uid = obj.metadata.uid ?? '';
    let memory = this.k.memory.get(uid);
    if (!memory) {
      memory = { nonCompliantSince: new Map(), snapshots: new Map(), scanFailures: new Map() };
      // After a restart, what the rows remember seeds the in-process memory.
      for (const row of status?.instances ?? []) {
        if (row.nonCompliantSince) memory.nonCompliantSince.set(row.instanceId, row.nonCompliantSince);
        if (row.snapshots) memory.snapshots.set(row.instanceId, row.snapshots);
      }
      this.k.memory.set(uid, memory);
    }
    const scope: PatchScope = {
      ...base,
      oos,
      ecs: this.deps.cloud.ecs(spec.regionId, view),
      fleet,
      // Scans and installs are polled through the region's shared listing of PatchPolicy
      // executions (running and recently ended: a call per round, not per execution). Its age
      // bounds run on the fleet's clock (the cloud layer's `now`), the policy's schedule on
      // `deps.now`: the same clock in production (Date.now) and in the fast tier (the fake clock
      // is given to both), so a poll never takes a listing from the future or the distant past.
      tracker: new OosExecutionTracker({
        oos,
        fleet,
        view,
        pollDelay: { minMs: this.opts.pollMinMs, maxMs: this.opts.pollMaxMs },
        template: APPLY_PATCH_BASELINE_TEMPLATE,
        events: this.deps.events,
        metrics: this.deps.metrics,
        parameters: (batch, action) => patchParameters(spec, batch, action),
      }),
      memory: memory as PatchMemory,
      targets: [],
      inFlight: (status?.executions ?? []).map(fromTracked),
      ledger: new FailureLedger(status?.retry),
      sequence: status?.executionSequence ?? 0,
      finished: [],
      complianceKnown: false,
      ...(status?.lastScan ? { lastScan: { ...status.lastScan } } : {}),
      ...(status?.lastInstall ? { lastInstall: { ...status.lastInstall } } : {}),
      ...(status?.analysis ? { analysis: structuredClone(status.analysis) } : {}),
      ...(status?.lastScheduledScanTime ? { lastScheduledScanTime: status.lastScheduledScanTime } : {}),
      ...(status?.lastHandledScanAt !== undefined ? { lastHandledScanAt: status.lastHandledScanAt } : {}),
    };
    // Installs (which may restart services or reboot) drain first; scans do not.
    const traffic = trafficScopeOf({
      spec: spec.trafficControl,
      status: status?.trafficControl,
      regionId: spec.regionId,
      lb: this.deps.cloud.loadBalancer?.bind(this.deps.cloud),
      drains: (action) => action === 'install',
    });
    if (traffic) scope.traffic = traffic;
    return scope;
  }

  private deriveStatus(scope: PatchScope, err: ReconcileError | undefined) {
    const derived = derivePatchPolicyStatus(scope, err, this.opts.maxInstanceRows);
    const pm = this.deps.patchMetrics;
    if (pm && derived.outcome) {
      const { metadata } = scope.obj;
      const mem = scope.memory;
      const oldest = [...mem.nonCompliantSince.values()].map((t) => Date.parse(t)).filter(Number.isFinite);
      const lastScanEnd = derived.status.lastScan?.endTime;
      pm.report({
        namespace: metadata.namespace ?? '',
        name: metadata.name ?? '',
        ...(derived.counts ? { counts: derived.counts } : {}),
        missing: mem.compliance?.severities ?? new Map(),
        windowOpen: scope.window?.state.open === true,
        ...(lastScanEnd ? { lastScanSeconds: Math.floor(Date.parse(lastScanEnd) / 1000) } : {}),
        oldestMissingAgeSeconds:
          oldest.length > 0 ? Math.max(0, Math.round((scope.now.getTime() - Math.min(...oldest)) / 1000)) : 0,
      });
    }
    return derived;
  }

  /**
   * The lowest of: the compliance interval, the execution poll delay, the next scheduled scan, and
   * the window's next edge (opening, the last start time before minRemaining, closing, and the
   * start and end of an occurrence skipped for a blackout date, which status names). Scheduled
   * instants get +500 ms so the reconcile lands after them. Milliseconds; the controller adds ±5 %
   * jitter, so long waits are cut to the interval and re-planned closer to the instant.
   */
  private requeueAfter(scope: PatchScope): number {
    const now = scope.now.getTime();
    const candidates = [intervalMs(scope.obj.spec.interval)];
    // A lock wait is woken when the hold ends (lock.ts); this is the fallback.
    if (scope.lockWait) candidates.push(this.opts.pollMaxMs);
    if (scope.gateWait) candidates.push(Math.max(1_000, scope.gateWait.wakeAtMs - now));
    if (scope.inFlight.length > 0) {
      candidates.push(
        pollDelayMs(
          scope.inFlight.map((w) => w.startTime),
          scope.now,
          this.opts.pollMinMs,
          this.opts.pollMaxMs,
        ),
      );
    }
    const at = (d: Date | undefined) => {
      if (d && d.getTime() > now) candidates.push(d.getTime() - now + 500);
    };
    at(nextScanAt(scope));
    const w = scope.window;
    if (w) {
      at(w.state.next?.opensAt);
      at(w.state.skipped?.opensAt);
      at(w.state.skipped?.closesAt);
      if (w.state.current) {
        at(w.state.current.closesAt);
        at(new Date(w.state.current.closesAt.getTime() - w.minRemainingMs));
      }
    }
    return Math.max(1_000, Math.min(...candidates));
  }
}
