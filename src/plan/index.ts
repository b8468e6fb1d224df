/**
 * `ecsops plan`: what the controller would do for a manifest, from live cloud state, without
 * writing anything — no Kubernetes access at all, and only cloud READ calls (DescribeInstances,
 * DescribeCloudAssistantStatus, GetTemplate, ListInstancePackageStates,
 * ListInstancePatchStates). Each kind reuses the controller's own pieces: target resolution
 * (`resolveTargets`), template parameter validation (`validateParameters`), the package
 * up-to-date rule (`packageUpToDate`), OOS batching (`OOS_BATCH_SIZE`, `oosRateControl`) and the
 * AppRelease batch arithmetic (`resolveCount`).
 */
import {
  BudgetUnsatisfiableReason,
  TemplateNotFoundReason,
  NotAPackageTemplateReason,
  InvalidSpecReason,
} from '../api/conditions.js';
import {
  INSTANCE_DISRUPTION_BUDGET_KIND,
  type InstanceDisruptionBudgetSpec,
} from '../api/instancedisruptionbudget.js';
import {
  admissionMessage,
  admitStarts,
  allowedUnavailable,
  BudgetSpecError,
  budgetUsage,
  type BudgetView,
} from '../controllers/shared/budget.js';
import type { AnalysisSpec } from '../api/analysis.js';
import type { AppReleaseSpec } from '../api/apprelease.js';
import { CONFIGURE_PACKAGE_TEMPLATE, type EcsExtensionSpec } from '../api/ecsextension.js';
import {
  APPLY_PATCH_BASELINE_TEMPLATE,
  SCAN_REQUESTED_ANNOTATION,
  type PatchPolicySpec,
} from '../api/patchpolicy.js';
import { scanDue } from '../controllers/patchpolicy/phases.js';
import { CronSchedule, ScheduleError } from '../controllers/shared/schedule.js';
import { scheduleErrorReason } from '../controllers/shared/schedule-errors.js';
import type { CloudClients, InstancePatchState, PackageState } from '../cloud/types.js';
import { isNotFound } from '../controllers/shared/cloud-errors.js';
import { revisionTagKey, resolveCount } from '../controllers/apprelease/scope.js';
import { revisionOf } from '../controllers/apprelease/wrapper.js';
import { isUpToDate, type ExtScope } from '../controllers/ecsextension/phases.js';
import { OOS_BATCH_SIZE, oosRateControl, RUN_COMMAND_BATCH_SIZE } from '../controllers/shared/execution.js';
import { validateParameters } from '../controllers/shared/parameters.js';
import {
  disruptivePolicy,
  screenKubernetesNodes,
  type KubernetesNodePolicy,
} from '../controllers/shared/kubernetes-nodes.js';
import { listIds, resolveTargets, type ResolvedTarget } from '../controllers/shared/targets.js';
import { StalledError } from '../runtime/errors.js';
import { TrafficControl, trafficScopeOf } from '../controllers/shared/traffic.js';
import {
  DEFAULT_DRAIN_SECONDS,
  DEFAULT_HEALTHY_TIMEOUT_SECONDS,
  type TrafficControlSpec,
} from '../api/traffic.js';
import { withSpecDefaults } from '../api/defaults.js';

/** One target instance and what the plan found on it. */
export interface PlannedInstance {
  instanceId: string;
  /**
   * `compliant` (nothing to do), `change` (work would start), `unreachable`, `waiting` (not in this
   * run), `excluded` (an ACK worker node the kind does not act on without spec.allowKubernetesNodes).
   */
  state: 'compliant' | 'change' | 'unreachable' | 'waiting' | 'excluded';
  /** Why, in a few words: `not installed`, `v2 → v3`, `instance is Stopped`, `3 missing patches`, ... */
  detail: string;
}

/** One execution (or Cloud Assistant invocation) the controller would start. */
export interface PlannedWork {
  /** OOS template or Cloud Assistant command type. */
  template: string;
  action: string;
  instanceIds: string[];
  /** Sizes of the executions/invocations the instances are split into, in start order. */
  batches: number[];
  /** Extra facts: rate control, package version, when it would run. */
  details: Record<string, unknown>;
  /**
   * True when the controller would start it at its next reconcile; false when it waits for a
   * schedule (a PatchPolicy scan on `spec.scan.schedule`, an install in its maintenance window).
   */
  immediate: boolean;
  /**
   * The analysis gates (spec.analysis) the controller runs between the batches, in order, e.g.
   * `batch 2 → analysis error-rate (bake 30s, 3 × 10s)`; absent without spec.analysis.
   */
  gates?: string[];
  /**
   * spec.trafficControl: the `Draining` step of each batch, in order, e.g. `batch 0 (1) → Draining
   * i-1 from sgp-a (drainSeconds 30) → deploy → restore original weights → healthy in sgp-a (≤ 300s)`.
   * Batch sizes are already cut by the capacity guard (maxDrained, minHealthyBackends).
   */
  traffic?: string[];
}

/** A spec problem the controller would report as `Stalled=True` with this reason. */
export interface PlanProblem {
  reason: string;
  message: string;
}

/** The plan for one manifest document. */
export interface Plan {
  kind: string;
  namespace?: string;
  name: string;
  regionId?: string;
  /** Counts; `excluded` (ACK worker nodes left out) only when some are, and not in `targeted`. */
  summary: { targeted: number; unreachable: number; compliant: number; change: number; excluded?: number };
  instances: PlannedInstance[];
  work: PlannedWork[];
  problems: PlanProblem[];
  notes: string[];
}

/** A manifest document (`apiVersion`, `kind`, `metadata`, `spec`). */
export interface ManifestObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
  };
  spec?: unknown;
  /**
   * The stored object's status, when known: carried by the document (`kubectl get -o yaml`) or read
   * from the cluster (`ecsops plan --kubeconfig`). It tells which requests the controller already
   * handled (a scan-requested annotation) and when the last scheduled scan ran.
   */
  status?: unknown;
}

/**
 * What one analysis gate does, for `ecsops plan`: `analysis error-rate (bake 30s, 3 × 10s)` — the
 * metric names, the bake time (default 0s) and each metric's `count × interval` (defaults 1 and
 * 30s; listed once when every metric has the same).
 */
export function describeGate(a: AnalysisSpec): string {
  const cadence = a.metrics.map((m) => `${m.count ?? 1} × ${m.interval ?? '30s'}`);
  const same = new Set(cadence).size <= 1;
  const names = a.metrics.map((m, i) => (same ? m.name : `${m.name} ${cadence[i]}`)).join(', ');
  return `analysis ${names} (bake ${a.bakeTime ?? '0s'}${same && cadence[0] ? `, ${cadence[0]}` : ''})`;
}

/**
 * spec.trafficControl in a plan: reads the groups (ListServerGroups / DescribeVServerGroupAttribute,
 * the health reads; read calls only), cuts `batches` of `ids` (in start order) with the
 * controller's own capacity guard (`TrafficControl.admit`, each batch judged with nothing of this
 * resource out of rotation), and describes each batch's Draining step. A refused load balancer
 * (ACK) or an unsatisfiable guard becomes a plan problem.
 * @returns the batch sizes to show and the step lines; `batches` unchanged without trafficControl.
 * @throws cloud errors of the reads, unchanged.
 */
async function planTraffic(
  plan: Plan,
  cloud: CloudClients,
  o: {
    spec: TrafficControlSpec | undefined;
    regionId: string;
    action: string;
    ids: string[];
    batches: number[];
  },
): Promise<{ batches: number[]; traffic?: string[] }> {
  if (!o.spec) return { batches: o.batches };
  const t = trafficScopeOf({
    spec: o.spec,
    status: undefined,
    regionId: o.regionId,
    lb: cloud.loadBalancer?.bind(cloud),
    drains: () => true,
  });
  if (!t) return { batches: o.batches };
  const tc = new TrafficControl();
  try {
    const reads = await tc.read(t, { health: true, scope: 'start' });
    const batches: number[] = [];
    const lines: string[] = [];
    let rest = [...o.ids];
    for (let i = 0; rest.length > 0; i++) {
      const want = o.batches[Math.min(i, o.batches.length - 1)] ?? rest.length;
      const guard = tc.admit(t, reads, rest.slice(0, want), { reserve: false });
      const admitted = guard.admitted;
      if (admitted.length === 0) {
        plan.notes.push(
          `${rest.length} instance(s) wait: ${guard.waiting ?? 'the capacity guard admits none now'}`,
        );
        break;
      }
      batches.push(admitted.length);
      rest = rest.filter((id) => !admitted.includes(id));
      const members = new Set(
        o.spec.serverGroups.flatMap(
          (g) => reads.views.get(g.serverGroupId)?.backends.map((b) => b.instanceId) ?? [],
        ),
      );
      const drained = admitted.filter((id) => members.has(id));
      const groups = o.spec.serverGroups
        .filter((g) => reads.views.get(g.serverGroupId)?.backends.some((b) => drained.includes(b.instanceId)))
        .map((g) => g.serverGroupId);
      lines.push(
        groups.length === 0
          ? `batch ${i} (${admitted.length}) → in no listed server group: ${o.action} without draining`
          : `batch ${i} (${admitted.length}) → Draining ${listIds(drained)} from ${groups.join(', ')} (drainSeconds ${o.spec.drainSeconds ?? DEFAULT_DRAIN_SECONDS}) → ${o.action} → original weights back → healthy in ${groups.join(', ')} (≤ ${o.spec.healthyTimeoutSeconds ?? DEFAULT_HEALTHY_TIMEOUT_SECONDS}s)`,
      );
    }
    return { batches, traffic: lines };
  } catch (err) {
    if (!(err instanceof StalledError)) throw err;
    plan.problems.push({ reason: err.reason, message: err.message });
    return { batches: o.batches };
  }
}

/**
 * The controller's own "already compliant" rule (`isUpToDate` reads only `obj.spec` and
 * `resolvedVersion` of its scope), applied to a manifest's spec.
 */
function upToDate(
  spec: EcsExtensionSpec,
  version: string | undefined,
  state: PackageState | undefined,
): boolean {
  return isUpToDate({ obj: { spec }, resolvedVersion: version } as unknown as ExtScope, state);
}

function chunkSizes(n: number, size: number): number[] {
  const out: number[] = [];
  for (let left = n; left > 0; left -= size) out.push(Math.min(size, left));
  return out;
}

function emptyPlan(obj: ManifestObject, kind: string): Plan {
  const spec = obj.spec as { regionId?: string } | undefined;
  return {
    kind,
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
    name: obj.metadata?.name ?? '(unnamed)',
    ...(spec?.regionId ? { regionId: spec.regionId } : {}),
    summary: { targeted: 0, unreachable: 0, compliant: 0, change: 0 },
    instances: [],
    work: [],
    problems: [],
    notes: [],
  };
}

function finish(plan: Plan): Plan {
  plan.instances.sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
  const excluded = plan.instances.filter((i) => i.state === 'excluded').length;
  plan.summary = {
    targeted: plan.instances.length - excluded,
    unreachable: plan.instances.filter((i) => i.state === 'unreachable').length,
    compliant: plan.instances.filter((i) => i.state === 'compliant').length,
    change: plan.instances.filter((i) => i.state === 'change').length,
    ...(excluded > 0 ? { excluded } : {}),
  };
  return plan;
}

/**
 * The fields every kind needs before anything can be read. The full OpenAPI schema and CEL rules
 * are the API server's (`kubectl apply --dry-run=server`); the controller itself trusts them.
 */
function specProblem(spec: unknown, required: string[]): PlanProblem | undefined {
  if (typeof spec !== 'object' || spec === null)
    return { reason: InvalidSpecReason, message: 'spec is missing' };
  const missing = required.filter((k) => (spec as Record<string, unknown>)[k] === undefined);
  return missing.length > 0
    ? { reason: InvalidSpecReason, message: `spec.${missing.join(', spec.')} must be set` }
    : undefined;
}

/**
 * Resolves targets and screens ACK worker nodes with the kind's policy (the controller's own
 * `screenKubernetesNodes`): excluded ones become `excluded` rows, kept ones a note. A StalledError
 * becomes a problem, anything else (cloud failure) propagates.
 */
async function targetsOf(
  plan: Plan,
  cloud: CloudClients,
  spec: { regionId: string; targets: Parameters<typeof resolveTargets>[2] },
  policy: KubernetesNodePolicy,
): Promise<ResolvedTarget[] | undefined> {
  try {
    const screen = screenKubernetesNodes(
      await resolveTargets(cloud.ecs(spec.regionId, { owner: 'plan' }), spec.regionId, spec.targets),
      policy,
    );
    const targets = screen.targets;
    if (policy === 'exclude') {
      for (const id of screen.nodeIds)
        plan.instances.push({
          instanceId: id,
          state: 'excluded',
          detail: 'ACK worker node (spec.allowKubernetesNodes is not true)',
        });
    } else if (screen.nodeIds.length > 0) {
      plan.notes.push(
        `${screen.nodeIds.length} targeted instance(s) are ACK worker nodes and would be acted on: ${listIds(screen.nodeIds)}`,
      );
    }
    for (const t of targets) {
      if (!t.reachable)
        plan.instances.push({
          instanceId: t.instanceId,
          state: 'unreachable',
          detail: t.unreachableReason ?? '',
        });
    }
    return targets;
  } catch (err) {
    if (err instanceof StalledError) {
      plan.problems.push({ reason: err.reason, message: err.message });
      return undefined;
    }
    throw err;
  }
}

/**
 * EcsExtension: targets, the package template (pin or latest) and its parameters, each reachable
 * target's package state, and the install / update executions of
 * ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL in batches of 50 that would start.
 * @throws cloud errors other than "not found" (network, permissions), unchanged.
 */
export async function planEcsExtension(obj: ManifestObject, cloud: CloudClients): Promise<Plan> {
  const plan = emptyPlan(obj, 'EcsExtension');
  const problem = specProblem(obj.spec, ['regionId', 'targets', 'packageName']);
  if (problem) return finish({ ...plan, problems: [problem] });
  const spec = obj.spec as EcsExtensionSpec;
  const targets = await targetsOf(plan, cloud, spec, 'warn');
  const oos = cloud.oos(spec.regionId, { owner: 'plan' });
  let version = spec.packageVersion;
  try {
    const t = await oos.getTemplate(spec.packageName, spec.packageVersion);
    if (t.templateType && t.templateType !== 'Package') {
      plan.problems.push({
        reason: NotAPackageTemplateReason,
        message: `OOS template ${spec.packageName} is of type ${t.templateType}, not Package`,
      });
    } else {
      version = t.templateVersion ?? spec.packageVersion;
      const p = validateParameters(
        spec.parameters ?? {},
        t.parameters,
        `package template ${spec.packageName} ${version ?? ''}`.trimEnd(),
      );
      if (p) plan.problems.push({ reason: p.reason, message: p.message });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    plan.problems.push({
      reason: TemplateNotFoundReason,
      message: `OOS package template ${spec.packageName}${spec.packageVersion ? ` ${spec.packageVersion}` : ''} does not exist in region ${spec.regionId}`,
    });
  }
  if (!targets) return finish(plan);
  const install: string[] = [];
  const update: string[] = [];
  for (const t of targets.filter((x) => x.reachable)) {
    const states: PackageState[] = await oos.listInstancePackageStates(t.instanceId, [spec.packageName]);
    const state = states.find((s) => s.templateName === spec.packageName);
    if (upToDate(spec, version, state)) {
      plan.instances.push({
        instanceId: t.instanceId,
        state: 'compliant',
        detail: `${state?.templateVersion ?? ''} installed`.trim(),
      });
    } else {
      (state ? update : install).push(t.instanceId);
      plan.instances.push({
        instanceId: t.instanceId,
        state: 'change',
        detail: state ? `${state.templateVersion ?? '?'} → ${version ?? 'latest'}` : 'not installed',
      });
    }
  }
  if (plan.problems.length > 0) {
    plan.notes.push('Stalled: no execution starts until the spec problems are fixed');
    return finish(plan);
  }
  if (spec.suspend) plan.notes.push('spec.suspend is true: nothing starts');
  else if (spec.mode === 'Observe') plan.notes.push('mode Observe: drift is reported, no execution starts');
  else {
    for (const [action, ids] of [
      ['install', install],
      ['update', update],
    ] as const) {
      if (ids.length === 0) continue;
      plan.work.push({
        template: CONFIGURE_PACKAGE_TEMPLATE,
        action,
        instanceIds: [...ids].sort(),
        batches: chunkSizes(ids.length, OOS_BATCH_SIZE),
        immediate: true,
        details: {
          packageName: spec.packageName,
          ...(version ? { packageVersion: version } : {}),
          parameters: spec.parameters ?? {},
          rateControl: oosRateControl(spec.rateControl),
        },
      });
    }
  }
  return finish(plan);
}

/**
 * PatchPolicy: targets and each reachable target's last patch scan (ListInstancePatchStates):
 * compliant, missing patches, or never scanned; the scan that would run (at once when the
 * controller's own rule, `scanDue`, says so: a scan-requested annotation value the status has not
 * handled, or a scheduled run due since the last one; else on spec.scan.schedule) and the install
 * that would run in the maintenance window (scheduled, never immediate), both with
 * ACS-ECS-BulkyApplyPatchBaseline in batches of 50.
 * @throws cloud errors, unchanged.
 */
export async function planPatchPolicy(obj: ManifestObject, cloud: CloudClients): Promise<Plan> {
  const plan = emptyPlan(obj, 'PatchPolicy');
  const problem = specProblem(obj.spec, ['regionId', 'targets']);
  if (problem) return finish({ ...plan, problems: [problem] });
  const spec = obj.spec as PatchPolicySpec;
  const targets = await targetsOf(plan, cloud, spec, disruptivePolicy(spec));
  if (!targets) return finish(plan);
  const reachable = targets.filter((t) => t.reachable).map((t) => t.instanceId);
  const states = new Map<string, InstancePatchState>();
  if (reachable.length > 0) {
    for (const s of await cloud.oos(spec.regionId, { owner: 'plan' }).listInstancePatchStates(reachable))
      states.set(s.instanceId, s);
  }
  const missing: string[] = [];
  const unscanned: string[] = [];
  for (const id of reachable) {
    const s = states.get(id);
    if (!s?.operationEndTime) {
      unscanned.push(id);
      plan.instances.push({ instanceId: id, state: 'change', detail: 'never scanned' });
    } else if (s.missingCount + s.failedCount + s.installedPendingRebootCount > 0) {
      missing.push(id);
      plan.instances.push({
        instanceId: id,
        state: 'change',
        detail: `${s.missingCount} missing, ${s.failedCount} failed, ${s.installedPendingRebootCount} pending reboot`,
      });
    } else plan.instances.push({ instanceId: id, state: 'compliant', detail: 'no missing patches' });
  }
  const rc = oosRateControl(spec.rateControl);
  if (spec.suspend) {
    plan.notes.push('spec.suspend is true: nothing starts');
    return finish(plan);
  }
  let schedule: CronSchedule | undefined;
  try {
    if (spec.scan) schedule = new CronSchedule(spec.scan.schedule, spec.scan.timeZone ?? 'UTC');
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    plan.problems.push({ reason: scheduleErrorReason(err), message: `spec.scan.${err.message}` });
    return finish(plan);
  }
  const status = (obj.status ?? {}) as { lastHandledScanAt?: string; lastScheduledScanTime?: string };
  const requested = obj.metadata?.annotations?.[SCAN_REQUESTED_ANNOTATION];
  const due = scanDue({
    requested,
    lastHandledScanAt: status.lastHandledScanAt,
    targets: targets.length,
    ...(schedule ? { schedule } : {}),
    creationTimestamp: obj.metadata?.creationTimestamp,
    lastScheduledScanTime: status.lastScheduledScanTime,
    now: new Date(),
  });
  const scanNow = due.byRequest || due.scheduled !== undefined;
  if (requested !== undefined && obj.status === undefined)
    plan.notes.push(
      `${SCAN_REQUESTED_ANNOTATION}=${requested} counts as not handled yet: the document has no status (pass --kubeconfig to read the stored one)`,
    );
  if (unscanned.length > 0 && !scanNow)
    plan.notes.push(
      `${unscanned.length} instance(s) never scanned: the next scheduled or requested scan covers them`,
    );
  if (reachable.length > 0) {
    plan.work.push({
      template: APPLY_PATCH_BASELINE_TEMPLATE,
      action: 'scan',
      instanceIds: [...reachable].sort(),
      batches: chunkSizes(reachable.length, OOS_BATCH_SIZE),
      immediate: scanNow,
      details: {
        when: scanNow ? 'at once' : `on schedule ${spec.scan?.schedule ?? '(none)'}`,
        rateControl: rc,
      },
    });
  }
  if (spec.install && missing.length > 0) {
    const gate = spec.analysis;
    const { batches: sizes, traffic } = await planTraffic(plan, cloud, {
      spec: spec.trafficControl,
      regionId: spec.regionId,
      action: 'install',
      ids: [...missing].sort(),
      batches: chunkSizes(missing.length, OOS_BATCH_SIZE),
    });
    const window = spec.install.maintenanceWindowRef
      ? `in MaintenanceWindow ${spec.install.maintenanceWindowRef.name}`
      : spec.install.maintenanceWindow
        ? `in the inline window ${spec.install.maintenanceWindow.schedule}`
        : 'in the next window';
    plan.work.push({
      template: APPLY_PATCH_BASELINE_TEMPLATE,
      action: 'install',
      instanceIds: [...missing].sort(),
      batches: sizes,
      immediate: false,
      details: {
        when: window,
        rebootIfNeeded: spec.install.rebootIfNeeded ?? false,
        snapshot: spec.install.snapshot?.enabled ?? false,
        rateControl: rc,
        // With spec.analysis, executions run one at a time and the gate runs between them.
        ...(gate ? { parallelBatches: 1 } : {}),
      },
      ...(traffic ? { traffic } : {}),
      ...(gate
        ? { gates: sizes.slice(0, -1).map((n, i) => `execution ${i} (${n}) → ${describeGate(gate)}`) }
        : {}),
    });
  }
  if (spec.install?.maintenanceWindowRef)
    plan.notes.push(
      `window ${spec.install.maintenanceWindowRef.name} is read from the cluster by the controller; plan does not evaluate it`,
    );
  return finish(plan);
}

/**
 * AppRelease: targets, each reachable target's revision tag (`ecsops.io/app.<application>`)
 * against the spec's revision, and the rollout batches of Cloud Assistant RunCommand
 * (RunShellScript, the wrapper) the controller would run: the canary, then `strategy.batchSize`.
 * @throws cloud errors, unchanged.
 */
export async function planAppRelease(obj: ManifestObject, cloud: CloudClients): Promise<Plan> {
  const plan = emptyPlan(obj, 'AppRelease');
  const problem = specProblem(obj.spec, ['regionId', 'targets', 'application', 'version']);
  if (problem) return finish({ ...plan, problems: [problem] });
  const spec = obj.spec as AppReleaseSpec;
  const targets = await targetsOf(plan, cloud, spec, disruptivePolicy(spec));
  if (!targets) return finish(plan);
  const revision = revisionOf(spec);
  const key = revisionTagKey(spec.application);
  const deploy: string[] = [];
  for (const t of targets.filter((x) => x.reachable)) {
    const current = t.instance.tags.find((x) => x.key === key)?.value;
    if (current === revision)
      plan.instances.push({ instanceId: t.instanceId, state: 'compliant', detail: `revision ${revision}` });
    else {
      deploy.push(t.instanceId);
      plan.instances.push({
        instanceId: t.instanceId,
        state: 'change',
        detail: current ? `revision ${current} → ${revision}` : 'not deployed',
      });
    }
  }
  if (spec.suspend) plan.notes.push('spec.suspend is true: nothing starts');
  else if (deploy.length > 0) {
    const total = targets.filter((x) => x.reachable).length;
    const strategy = spec.strategy ?? {};
    const batch = Math.max(
      1,
      Math.min(resolveCount(strategy.batchSize, total, total, 'up'), RUN_COMMAND_BATCH_SIZE),
    );
    const canary = Math.min(strategy.canary?.instances ?? 0, deploy.length);
    const { batches, traffic } = await planTraffic(plan, cloud, {
      spec: spec.trafficControl,
      regionId: spec.regionId,
      action: 'deploy',
      ids: [...deploy].sort(),
      batches: [...(canary > 0 ? [canary] : []), ...chunkSizes(deploy.length - canary, batch)],
    });
    const gate = spec.analysis;
    plan.work.push({
      template: 'RunCommand RunShellScript (ecsops wrapper)',
      action: 'deploy',
      instanceIds: [...deploy].sort(),
      batches,
      immediate: true,
      details: {
        application: spec.application,
        version: spec.version,
        revision,
        ...(canary > 0 ? { canary, pauseAfterCanary: strategy.canary?.pause ?? false } : {}),
        maxErrors: strategy.maxErrors ?? 0,
      },
      ...(traffic ? { traffic } : {}),
      // The controller gates every batch, the last one included (a failure rolls the rollout back).
      ...(gate
        ? {
            gates: batches.map(
              (n, i) => `batch ${i} (${n}${i === 0 && canary > 0 ? ', canary' : ''}) → ${describeGate(gate)}`,
            ),
          }
        : {}),
    });
  }
  return finish(plan);
}

const PLANNERS: Record<string, (obj: ManifestObject, cloud: CloudClients) => Promise<Plan>> = {
  EcsExtension: planEcsExtension,
  PatchPolicy: planPatchPolicy,
  AppRelease: planAppRelease,
};

/**
 * Plans every `ecsops.io` document of a manifest, each seen as the API server would store it: the
 * CRD schema's defaults are applied to its spec first ({@link withSpecDefaults}), so a revision or
 * a rate control is computed from the same fields the controller reads. MaintenanceWindow
 * documents and other kinds are listed with a note and nothing else.
 * @throws cloud errors (network, permissions) from any planner.
 */
export async function planManifest(docs: ManifestObject[], cloud: CloudClients): Promise<Plan[]> {
  const out: Plan[] = [];
  const budgets = await resolveBudgets(docs, cloud);
  for (const doc of docs) {
    const kind = doc.kind ?? '';
    if (kind === INSTANCE_DISRUPTION_BUDGET_KIND && doc.apiVersion?.startsWith('ecsops.io/')) {
      out.push(planBudget(doc, budgets));
      continue;
    }
    const planner = PLANNERS[kind];
    const obj = doc.spec === undefined ? doc : { ...doc, spec: withSpecDefaults(kind, doc.spec) };
    if (planner && obj.apiVersion?.startsWith('ecsops.io/')) out.push(await planner(obj, cloud));
    else {
      const p = emptyPlan(obj, kind || '(no kind)');
      p.notes.push(
        kind === 'MaintenanceWindow' ? 'a schedule: nothing to plan' : 'not an ecsops.io kind with a plan',
      );
      out.push(p);
    }
  }
  for (const p of out) applyBudgets(p, budgets);
  return out;
}

/** An InstanceDisruptionBudget of the manifest, resolved (selection only: plan reads no holds). */
interface PlannedBudget {
  regionId: string;
  view: BudgetView;
  /** Why it could not be resolved (spec problem). */
  problem?: PlanProblem;
}

/**
 * Resolves every InstanceDisruptionBudget document of the manifest (ECS DescribeInstances by tag
 * or ID, each instance's zone kept), as the budget controller does.
 * @throws cloud errors of the reads.
 */
async function resolveBudgets(docs: ManifestObject[], cloud: CloudClients): Promise<PlannedBudget[]> {
  const out: PlannedBudget[] = [];
  for (const doc of docs) {
    if (doc.kind !== INSTANCE_DISRUPTION_BUDGET_KIND || !doc.apiVersion?.startsWith('ecsops.io/')) continue;
    const spec = doc.spec as InstanceDisruptionBudgetSpec | undefined;
    const view: BudgetView = {
      name: doc.metadata?.name ?? '(unnamed)',
      maxUnavailable: spec?.maxUnavailable ?? 0,
      perZone: spec?.perZone === true,
      instances: new Map(),
    };
    const regionId = spec?.regionId ?? '';
    try {
      allowedUnavailable(view.maxUnavailable, 0);
      if (!spec?.selector) throw new StalledError(InvalidSpecReason, 'spec.selector is required');
      const targets = await resolveTargets(cloud.ecs(regionId), regionId, spec.selector, { missing: 'skip' });
      view.instances = new Map(targets.map((t) => [t.instanceId, t.instance.zoneId ?? '']));
      out.push({ regionId, view });
    } catch (err) {
      if (err instanceof BudgetSpecError || err instanceof StalledError)
        out.push({ regionId, view, problem: { reason: InvalidSpecReason, message: (err as Error).message } });
      else throw err;
    }
  }
  return out;
}

/** The plan of a budget document: what it selects and allows (per zone with perZone). */
function planBudget(doc: ManifestObject, budgets: readonly PlannedBudget[]): Plan {
  const p = emptyPlan(doc, INSTANCE_DISRUPTION_BUDGET_KIND);
  const b = budgets.find((x) => x.view.name === (doc.metadata?.name ?? '(unnamed)'));
  if (!b) return p;
  if (b.problem) {
    p.problems.push(b.problem);
    return p;
  }
  p.summary.targeted = b.view.instances.size;
  const usage = budgetUsage(b.view, () => false)
    .map(
      (u) =>
        `${u.allowed} of ${u.selected}${u.zoneId !== undefined ? ` in ${u.zoneId || 'an unknown zone'}` : ''}`,
    )
    .join(', ');
  p.notes.push(
    `a disruption budget: allows ${usage || 'nothing selected'} unavailable at once, across every kind`,
  );
  return p;
}

/**
 * Adds to a kind's plan what the manifest's budgets do to its immediate work: which budgets select
 * its instances and how many the first round may start. Plan reads no Kubernetes status, so other
 * resources' holds are not counted (the controller counts them: fewer may start). A start no budget
 * could ever admit becomes the `BudgetUnsatisfiable` problem the controller would report.
 */
function applyBudgets(p: Plan, budgets: readonly PlannedBudget[]): void {
  const views = budgets.filter((b) => !b.problem && b.regionId === p.regionId).map((b) => b.view);
  if (views.length === 0 || p.kind === INSTANCE_DISRUPTION_BUDGET_KIND) return;
  for (const w of p.work) {
    if (!w.immediate || w.action === 'scan') continue;
    const selecting = views.filter((v) => w.instanceIds.some((id) => v.instances.has(id)));
    if (selecting.length === 0) continue;
    const a = admitStarts(w.instanceIds, selecting, () => false, {
      ...(w.action === 'rollback' ? { allOrNothing: true } : {}),
    });
    const names = selecting.map((v) => v.name).join(', ');
    w.details.budgets = names;
    w.details.budgetAdmits = a.admitted.length;
    const why = admissionMessage(a);
    p.notes.push(
      `${w.action}: budget(s) ${names} select these instances; ${a.admitted.length} of ${w.instanceIds.length} may start at once${why ? ` (${why}; the rest wait: WaitingForDisruptionBudget)` : ''}; holds of other resources are not visible to plan`,
    );
    if (a.admitted.length === 0 && a.unsatisfiable > 0 && a.waiting === 0)
      p.problems.push({
        reason: BudgetUnsatisfiableReason,
        message: why ?? 'a disruption budget can never admit',
      });
  }
}

/**
 * Terraform's `-detailed-exitcode` convention for a finished plan: 1 when any document has a spec
 * problem the controller would report as `Stalled` (an error: nothing starts until it is fixed),
 * 2 when the controller would start an execution or invocation at its next reconcile, 0 otherwise
 * — including work that only waits for its schedule (a PatchPolicy scan on `spec.scan.schedule`,
 * an install in its maintenance window), so a converged policy is 0, not 2 forever.
 */
export function planExitCode(plans: Plan[]): 0 | 1 | 2 {
  if (plans.some((p) => p.problems.length > 0)) return 1;
  return plans.some((p) => p.work.some((w) => w.immediate)) ? 2 : 0;
}

/** The closing line of the human form: what the next reconcile would do across all documents. */
function planSummary(plans: Plan[]): string {
  const stalled = plans.filter((p) => p.problems.length > 0).length;
  const now = plans.filter((p) => p.work.some((w) => w.immediate)).length;
  const scheduled = plans.filter((p) => p.work.some((w) => !w.immediate)).length;
  const waits = scheduled > 0 ? `; ${scheduled} document(s) have work waiting for a schedule` : '';
  if (stalled > 0) return `Plan: ${stalled} document(s) Stalled on spec problems (fix them first)${waits}.`;
  if (now > 0) return `Plan: ${now} document(s) would start work at the next reconcile${waits}.`;
  return `Plan: nothing to do at the next reconcile${waits}.`;
}

/** The human form of `ecsops plan`: one block per document, then one line per instance and execution. */
export function formatPlans(plans: Plan[]): string {
  const lines: string[] = [];
  for (const p of plans) {
    const where = `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}${p.regionId ? ` (${p.regionId})` : ''}`;
    lines.push(where);
    const s = p.summary;
    lines.push(
      `  targets: ${s.targeted} (compliant ${s.compliant}, to change ${s.change}, unreachable ${s.unreachable})${s.excluded ? `; excluded ${s.excluded} ACK worker node(s)` : ''}`,
    );
    for (const pr of p.problems) lines.push(`  STALLED ${pr.reason}: ${pr.message}`);
    if (p.instances.length > 0) {
      const w = Math.max(...p.instances.map((i) => i.instanceId.length));
      lines.push(`  ${'INSTANCE'.padEnd(w)}  ${'STATE'.padEnd(11)}  DETAIL`);
      for (const i of p.instances)
        lines.push(`  ${i.instanceId.padEnd(w)}  ${i.state.padEnd(11)}  ${i.detail}`);
    }
    if (p.work.length === 0) lines.push('  would start: nothing');
    for (const w of p.work) {
      const extra = Object.entries(w.details)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      lines.push(
        `  ${w.immediate ? 'would start' : 'scheduled'}: ${w.template} action=${w.action} on ${w.instanceIds.length} instance(s) in ${w.batches.length} batch(es) [${w.batches.join(', ')}] ${extra}`,
      );
      for (const g of w.traffic ?? []) lines.push(`    ${g}`);
      for (const g of w.gates ?? []) lines.push(`    ${g}`);
    }
    for (const n of p.notes) lines.push(`  note: ${n}`);
    lines.push('');
  }
  lines.push(planSummary(plans), '');
  return lines.join('\n');
}
