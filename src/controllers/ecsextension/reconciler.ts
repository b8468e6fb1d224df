/**
 * EcsExtension reconciler (DESIGN §1/§3) on the shared kit: the {@link ReconcileDriver} runs the
 * preamble, gates and the one status write; this file lists the phases ({@link ./phases.ts}), the
 * deletion step ({@link ./delete.ts}) and the status derivation ({@link ./status.ts}).
 */
import { CONFIGURE_PACKAGE_TEMPLATE, ECS_EXTENSION_KIND, type EcsExtension } from '../../api/ecsextension.js';
import type { CloudClients } from '../../cloud/types.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { ClaimRegistry } from '../shared/claims.js';
import type { InstanceLock } from '../shared/lock.js';
import { WorkKit } from '../shared/start.js';
import type { ControllerMetrics, EventSink, KubeWriter, ObjectReader } from '../shared/deps.js';
import {
  intervalMs,
  ReconcileDriver,
  type BaseScope,
  type DriverOptions,
  type KindHooks,
} from '../shared/driver.js';
import { oosRateControl } from '../shared/execution.js';
import { OosExecutionTracker } from '../shared/oos-tracker.js';
import { FailureLedger } from '../shared/retry.js';
import { fromTracked, pollDelayMs } from '../shared/work.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { reconcileDelete } from './delete.js';
import {
  reconcileConflicts,
  reconcileExecutions,
  reconcileInstall,
  reconcilePackageStates,
  reconcileTargets,
  reconcileTemplate,
  type ExtContext,
  type ExtScope,
} from './phases.js';
import { deriveEcsExtensionStatus } from './status.js';

export type { ControllerMetrics, EventSink } from '../shared/deps.js';

/** Writes to the Kubernetes API for EcsExtension objects. */
export type EcsExtensionKubeWriter = KubeWriter<EcsExtension>;

export interface EcsExtensionOptions extends DriverOptions {
  /** Bound on status.instances rows. Default 100. */
  maxInstanceRows: number;
  /** Poll delay for running executions, milliseconds: grows from min to max with execution age. */
  pollMinMs: number;
  pollMaxMs: number;
  /** Backoff for retrying failed instances, milliseconds. */
  retryBaseMs: number;
  retryMaxMs: number;
  stalledRecheckMs: number;
}

export const defaultEcsExtensionOptions: EcsExtensionOptions = {
  maxInstanceRows: 100,
  pollMinMs: 5_000,
  pollMaxMs: 60_000,
  retryBaseMs: 30_000,
  retryMaxMs: 30 * 60_000,
  stalledRecheckMs: 10 * 60_000,
};

export interface EcsExtensionDeps {
  /** Reads objects from the informer cache. */
  objects: ObjectReader<EcsExtension>;
  kube: KubeWriter<EcsExtension>;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  now?: () => Date;
  options?: Partial<EcsExtensionOptions>;
  /** The process's cross-kind per-instance lock. */
  lock?: InstanceLock;
}

/** The EcsExtension reconciler: the shared driver with this kind's hooks. */
export class EcsExtensionReconciler implements Reconciler {
  private readonly driver: ReconcileDriver<EcsExtension, ExtScope>;
  private readonly opts: EcsExtensionOptions;
  private readonly k: ExtContext;

  constructor(private readonly deps: EcsExtensionDeps) {
    this.opts = { ...defaultEcsExtensionOptions, ...deps.options };
    this.k = {
      live: new Map(),
      claims: new ClaimRegistry(),
      ...(deps.lock ? { lock: deps.lock } : {}),
      work: new WorkKit(deps.lock ? { lock: deps.lock } : {}),
      events: deps.events,
      backoff: { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs },
    };
    const k = this.k;
    const hooks: KindHooks<EcsExtension, ExtScope> = {
      kind: ECS_EXTENSION_KIND,
      writesAllowed: (obj) => !obj.spec.suspend && obj.spec.mode !== 'Observe',
      newScope: (base) => this.newScope(base),
      work: { reconcile: (s) => reconcileExecutions(k, s), inFlight: (s) => s.inFlight.length },
      phases: [
        (s) => reconcileTargets(k, s),
        (s) => reconcileConflicts(k, s),
        (s) => reconcileTemplate(s),
        (s) => reconcilePackageStates(s),
        (s) => reconcileInstall(k, s),
      ],
      reconcileDelete: (s) => reconcileDelete(k, s),
      deriveStatus: (s, err) => deriveEcsExtensionStatus(s, err, this.opts.maxInstanceRows),
      requeueAfterMs: (s) => this.requeueAfter(s),
      forget: (uid, gone) => {
        k.live.delete(uid);
        k.claims.remove(uid);
        if (gone) k.lock?.release(uid);
      },
    };
    // EcsExtensionDeps carries every KitDeps field (objects, kube, events, metrics, now).
    this.driver = new ReconcileDriver(hooks, deps, this.opts);
  }

  /** Reconciles one EcsExtension by key (see the driver). */
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    return this.driver.reconcile(req, ctx);
  }

  private newScope(base: BaseScope<EcsExtension>): ExtScope {
    const { obj, view } = base;
    const { spec } = obj;
    const oos = this.deps.cloud.oos(spec.regionId, view);
    const fleet = this.deps.cloud.fleet(spec.regionId);
    // A pending start is re-sent by the work phase, before the template phase resolves this
    // generation's version: it must carry the version its intent was recorded with (in status).
    const version = (): string | undefined => scope.resolvedVersion ?? obj.status?.resolvedPackageVersion;
    const tracker = new OosExecutionTracker({
      oos,
      fleet,
      view,
      pollDelay: { minMs: this.opts.pollMinMs, maxMs: this.opts.pollMaxMs },
      template: CONFIGURE_PACKAGE_TEMPLATE,
      events: this.deps.events,
      metrics: this.deps.metrics,
      parameters: (batch, action) => ({
        action,
        packageName: spec.packageName,
        targets: { Type: 'ResourceIds', RegionId: spec.regionId, ResourceIds: batch },
        rateControl: oosRateControl(spec.rateControl),
        parameters: spec.parameters ?? {},
        ...(action !== 'uninstall' && version() ? { packageVersion: version() } : {}),
      }),
    });
    const legacyFailed = (obj.status?.instances ?? []).filter((r) => r.state === 'Failed');
    const scope: ExtScope = {
      ...base,
      oos,
      ecs: this.deps.cloud.ecs(spec.regionId, view),
      fleet,
      tracker,
      targets: [],
      inFlight: (obj.status?.executions ?? []).map(fromTracked),
      ledger: new FailureLedger(obj.status?.retry, legacyFailed),
      sharedInFlight: new Map(),
      sequence: obj.status?.executionSequence ?? 0,
    };
    return scope;
  }

  /**
   * The lowest of: execution poll delay, failed-instance retry time, and the drift interval; a
   * resource that only waits for the instance lock requeues after `pollMaxMs` (a fallback: the
   * lock wakes it when the hold ends, lock.ts). Milliseconds; the controller adds ±5 % jitter.
   */
  private requeueAfter(scope: ExtScope): number {
    const candidates = [intervalMs(scope.obj.spec.interval)];
    if (scope.lockWait) candidates.push(this.opts.pollMaxMs);
    if (scope.inFlight.length > 0 || scope.sharedInFlight.size > 0) {
      candidates.push(
        pollDelayMs(
          scope.inFlight.length > 0 ? scope.inFlight.map((w) => w.startTime) : [toMetaTime(scope.now)],
          scope.now,
          this.opts.pollMinMs,
          this.opts.pollMaxMs,
        ),
      );
    }
    const retryAt = scope.ledger.retryAt;
    if (retryAt && scope.writesAllowed) {
      candidates.push(Math.max(this.opts.pollMinMs, Date.parse(retryAt) - scope.now.getTime()));
    }
    return Math.min(...candidates);
  }
}
