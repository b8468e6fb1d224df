/**
 * InstanceDisruptionBudget reconciler on the shared kit: resolves the budget's selector in its
 * region through the region's fleet view (ECS DescribeInstances by tag or ID; each instance's
 * zone kept), records the selection in the process's {@link DisruptionBudgets} (the start path of
 * every kind reads it), and writes the usage — selected, allowed, unavailable now (total and per
 * zone) and who holds what (from the cross-kind per-instance lock). No cloud writes and no
 * finalizer. A spec change or deletion tells the budgets' listeners, so resources Stalled
 * `BudgetUnsatisfiable` re-check.
 */
import { BudgetResolvedReason, InvalidSpecReason } from '../../api/conditions.js';
import {
  INSTANCE_DISRUPTION_BUDGET_KIND,
  type InstanceDisruptionBudget,
  type InstanceDisruptionBudgetStatus,
} from '../../api/instancedisruptionbudget.js';
import type { CloudClients } from '../../cloud/types.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { StalledError, type ReconcileError } from '../../runtime/errors.js';
import {
  allowedUnavailable,
  budgetUsage,
  BudgetSpecError,
  describeUsage,
  type BucketUsage,
  type DisruptionBudgets,
} from '../shared/budget.js';
import type { Outcome } from '../shared/conditions.js';
import type { ControllerMetrics, EventSink, KubeWriter, ObjectReader } from '../shared/deps.js';
import { SpecAnnouncer } from '../shared/announce.js';
import { ReconcileDriver, type BaseScope, type DerivedStatus, type KindHooks } from '../shared/driver.js';
import { describeHolder, instanceLockKey, type InstanceLock } from '../shared/lock.js';
import { resolveTargets, targetMaxAgeMs } from '../shared/targets.js';

/** Requeue while some selected instance is unavailable (usage in status stays fresh), ms. */
export const BUDGET_BUSY_REQUEUE_MS = 10_000;
/** Requeue while nothing selected is unavailable (re-resolves tags), ms. */
export const BUDGET_IDLE_REQUEUE_MS = 60_000;
/** Holders listed in status, largest first. */
export const MAX_BUDGET_HOLDERS = 50;

/** Facts of one budget reconcile. */
export interface BudgetScope extends BaseScope<InstanceDisruptionBudget> {
  /** Selected instance ID → zone ID. */
  selection?: Map<string, string>;
  usage?: BucketUsage[];
  /** Per-zone usage whatever `perZone` says (status.zones). */
  zones?: BucketUsage[];
  /** `Kind namespace/name` → selected instances it holds. */
  holders?: Map<string, { kind: string; namespace: string; name: string; count: number }>;
}

export interface InstanceDisruptionBudgetDeps {
  objects: ObjectReader<InstanceDisruptionBudget>;
  kube: KubeWriter<InstanceDisruptionBudget>;
  events: EventSink;
  metrics: ControllerMetrics;
  cloud: CloudClients;
  /**
   * The process's per-instance lock: who holds what. Its `budgets` (the process's budgets, set at
   * wiring) must be set: this controller records each budget's selection there.
   */
  lock: InstanceLock;
  now?: () => Date;
}

/**
 * reconcileSelection checks `maxUnavailable` (throws StalledError `InvalidSpec` for a value the
 * arithmetic cannot use; admission rejects these), resolves the selector through the fleet view
 * (instances that do not exist are skipped, not Stalled) and records the selection for the start
 * path.
 * @throws TransientError / StalledError mapped from ECS failures.
 */
export async function reconcileSelection(
  deps: Pick<InstanceDisruptionBudgetDeps, 'cloud'> & { budgets: DisruptionBudgets },
  scope: BudgetScope,
): Promise<void> {
  const { spec, metadata } = scope.obj;
  try {
    allowedUnavailable(spec.maxUnavailable, 0);
  } catch (err) {
    if (err instanceof BudgetSpecError) throw new StalledError(InvalidSpecReason, `spec.${err.message}`);
    throw err;
  }
  const targets = await resolveTargets(
    deps.cloud.ecs(spec.regionId, scope.view),
    spec.regionId,
    spec.selector,
    {
      missing: 'skip',
      fleet: { view: deps.cloud.fleet(spec.regionId), maxAgeMs: targetMaxAgeMs(scope), ...scope.view },
    },
  );
  scope.selection = new Map(targets.map((t) => [t.instanceId, t.instance.zoneId ?? '']));
  deps.budgets.record(metadata.uid ?? '', scope.selection);
}

/**
 * reconcileUsage counts the selected instances held now (by any resource, from the per-instance
 * lock): per bucket of the budget (`scope.usage`), per zone (`scope.zones`) and per holder.
 */
export function reconcileUsage(lock: InstanceLock, scope: BudgetScope): void {
  const selection = scope.selection ?? new Map<string, string>();
  const keys = lock.holders();
  const { spec, metadata } = scope.obj;
  const isHeld = (id: string) => keys.has(instanceLockKey(id));
  const view = { name: metadata.name ?? '', maxUnavailable: spec.maxUnavailable, instances: selection };
  scope.usage = budgetUsage({ ...view, perZone: spec.perZone === true }, isHeld);
  scope.zones = budgetUsage({ ...view, perZone: true }, isHeld);
  scope.holders = new Map();
  for (const id of selection.keys()) {
    const h = keys.get(instanceLockKey(id));
    if (!h) continue;
    const key = describeHolder(h);
    const row = scope.holders.get(key) ?? { kind: h.kind, namespace: h.namespace, name: h.name, count: 0 };
    row.count += 1;
    scope.holders.set(key, row);
  }
}

/** The budget's status and Ready verdict from its usage (pure). */
export function deriveBudgetStatus(
  scope: BudgetScope,
  error: ReconcileError | undefined,
): DerivedStatus<InstanceDisruptionBudgetStatus> & { outcome?: Outcome } {
  const status: InstanceDisruptionBudgetStatus = { ...(scope.obj.status ?? {}) };
  const usage = scope.usage;
  if (!usage || error) return { status };
  const sum = (f: (u: BucketUsage) => number) => usage.reduce((n, u) => n + f(u), 0);
  status.selected = scope.selection?.size ?? 0;
  status.allowed = sum((u) => u.allowed);
  status.unavailable = sum((u) => u.unavailable);
  const perZone = scope.obj.spec.perZone === true;
  status.zones = (scope.zones ?? []).map((z) => ({
    zoneId: z.zoneId ?? '',
    selected: z.selected,
    unavailable: z.unavailable,
    ...(perZone ? { allowed: z.allowed } : {}),
  }));
  status.holders = [...(scope.holders?.values() ?? [])]
    .sort((a, b) => b.count - a.count || describeHolder(a).localeCompare(describeHolder(b)))
    .slice(0, MAX_BUDGET_HOLDERS);
  const over = usage.filter((u) => u.unavailable > u.allowed);
  const shown = perZone ? usage.map(describeUsage).join(', ') : describeUsage(usage[0] as BucketUsage);
  const note = over.length
    ? `; over budget (${over.map(describeUsage).join(', ')}): work started before the budget or its change; no new start until below`
    : '';
  return {
    status,
    outcome: {
      kind: 'verdict',
      verdict: {
        ready: {
          status: 'True',
          reason: BudgetResolvedReason,
          message: `${status.selected} instance(s) selected; ${shown}${note}`,
        },
      },
    },
  };
}

/** Requeue: {@link BUDGET_BUSY_REQUEUE_MS} while something selected is unavailable, else idle. */
export function budgetRequeueMs(scope: BudgetScope): number {
  const busy = (scope.usage ?? []).some((u) => u.unavailable > 0);
  return busy ? BUDGET_BUSY_REQUEUE_MS : BUDGET_IDLE_REQUEUE_MS;
}

/** The InstanceDisruptionBudget reconciler: the shared driver with this kind's hooks. */
export class InstanceDisruptionBudgetReconciler implements Reconciler {
  private readonly driver: ReconcileDriver<InstanceDisruptionBudget, BudgetScope>;
  /** Tells the budgets' listeners about a new or changed spec, or a removed budget. */
  private readonly announcer: SpecAnnouncer;
  /** `deps.lock.budgets`: the process's budgets. */
  private readonly budgets: DisruptionBudgets;

  /** @throws Error when `deps.lock.budgets` is not set (a wiring mistake). */
  constructor(private readonly deps: InstanceDisruptionBudgetDeps) {
    const budgets = deps.lock.budgets;
    if (!budgets) throw new Error('InstanceDisruptionBudgetReconciler: deps.lock.budgets is not set');
    this.budgets = budgets;
    this.announcer = new SpecAnnouncer(() => budgets.changed());
    const hooks: KindHooks<InstanceDisruptionBudget, BudgetScope> = {
      kind: INSTANCE_DISRUPTION_BUDGET_KIND,
      finalizer: false,
      writesAllowed: () => false,
      newScope: (base) => ({ ...base }),
      phases: [
        async (s) => reconcileSelection({ cloud: this.deps.cloud, budgets: this.budgets }, s),
        async (s) => reconcileUsage(this.deps.lock, s),
        async (s) => this.announcer.announce(s.obj),
      ],
      reconcileDelete: async () => ({ done: true }),
      deriveStatus: deriveBudgetStatus,
      requeueAfterMs: budgetRequeueMs,
      forget: (uid, gone) => {
        if (!gone) return;
        this.budgets.forget(uid);
        this.announcer.forget(uid);
      },
    };
    this.driver = new ReconcileDriver(hooks, {
      objects: deps.objects,
      kube: deps.kube,
      events: deps.events,
      metrics: deps.metrics,
      ...(deps.now ? { now: deps.now } : {}),
    });
  }

  /** Reconciles one budget by key (`''` namespace: cluster-scoped; see the driver). */
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    return this.driver.reconcile(req, ctx);
  }
}
