/**
 * EcsExtension phases (DESIGN §3): each records facts on the {@link ExtScope} and returns, or
 * throws a classified error that ends the reconcile. Cloud side: ECS DescribeInstances /
 * DescribeCloudAssistantStatus (targets), OOS GetTemplate (version + declared Parameters), OOS
 * ListExecutions / ListTaskExecutions (tracked executions, through the shared tracker), OOS
 * ListInstancePackageStates (live state), OOS StartExecution of
 * ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL (install / update / uninstall).
 */
import { RECONCILE_REQUESTED_ANNOTATION } from '../../api/common.js';
import {
  ConflictingResourceReason,
  NotAPackageTemplateReason,
  TemplateNotFoundReason,
} from '../../api/conditions.js';
import type { EcsExtension } from '../../api/ecsextension.js';
import { InstanceUnreachableEvent, TrackExecutionAction } from '../../api/events.js';
import type { EcsApi, OosApi, PackageState, RegionFleet } from '../../cloud/index.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import type { ClaimRegistry } from '../shared/claims.js';
import { lockWaitOf, type InstanceLock, type LockCheck } from '../shared/lock.js';
import { isNotFound, toReconcileError } from '../shared/cloud-errors.js';
import type { EventSink } from '../shared/deps.js';
import { intervalMs, type BaseScope } from '../shared/driver.js';
import { clientToken } from '../shared/execution.js';
import type { OosExecutionTracker } from '../shared/oos-tracker.js';
import { validateParameters } from '../shared/parameters.js';
import { driftDetectionOf } from '../shared/freshness.js';
import type { BackoffOptions, FailureLedger } from '../shared/retry.js';
import { noteKubernetesNodes, screenKubernetesNodes, type NodeScreen } from '../shared/kubernetes-nodes.js';
import { listIds, resolveTargets, targetMaxAgeMs, type ResolvedTarget } from '../shared/targets.js';
import { reclassifyUnreachable } from '../shared/tracked.js';
import type { WorkKit } from '../shared/start.js';
import type { WorkItem } from '../shared/work.js';

/**
 * The targets a resource last resolved, kept between reconciles so that polls of running
 * executions do not call ECS again. Valid only for the generation and reconcile request it was
 * resolved for, and for 90 % of `spec.interval`, so new and changed instances are still seen
 * within one interval. Package states are not kept here: the region's fleet view holds them for
 * every resource.
 */
export interface TargetCache {
  generation: number;
  requested?: string;
  /** When the targets were resolved, ms since the epoch. */
  readAtMs: number;
  targets: ResolvedTarget[];
}

/** Per-process state and clients the phases share. */
export interface ExtContext {
  live: Map<string, TargetCache>;
  claims: ClaimRegistry;
  /** The process's cross-kind per-instance lock (absent in tests that run one kind alone). */
  lock?: InstanceLock;
  /** The kit's start path and tracked-work step (holds `lock`). */
  work: WorkKit;
  events: EventSink;
  backoff: BackoffOptions;
}

/** Facts gathered during one EcsExtension reconcile. */
export interface ExtScope extends BaseScope<EcsExtension> {
  oos: OosApi;
  ecs: EcsApi;
  /** The region's shared view of package states and templates. */
  fleet: RegionFleet;
  tracker: OosExecutionTracker;
  targets: ResolvedTarget[];
  /** Kubernetes nodes among the targets (kept: agents belong on nodes too; warned and counted). */
  nodeScreen?: NodeScreen;
  resolvedVersion?: string;
  /** Work still running after this reconcile's poll (plus any started now). */
  inFlight: WorkItem[];
  /** Failure memory and round backoff (status.retry). */
  ledger: FailureLedger;
  /** Set when some gaps wait for another resource's work on the same instances (cross-kind lock). */
  lockWait?: { count: number; holder: string };
  /** Targets on which an agreeing resource has work in flight → its execution ID (overlap without waste). */
  sharedInFlight: Map<string, string>;
  /** This resource's package state on each reachable target (after reconcilePackageStates). */
  states?: Map<string, PackageState | undefined>;
  sequence: number;
}

/** The resource's {@link TargetCache} if it is still valid for this reconcile. */
export function freshCache(k: ExtContext, scope: ExtScope): TargetCache | undefined {
  const { metadata, spec } = scope.obj;
  const cache = k.live.get(metadata.uid ?? '');
  if (!cache) return undefined;
  const fresh =
    cache.generation === (metadata.generation ?? 0) &&
    cache.requested === metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION] &&
    scope.now.getTime() - cache.readAtMs < 0.9 * intervalMs(spec.interval);
  return fresh ? cache : undefined;
}

/**
 * reconcileTargets resolves spec.targets (throws InstanceNotFound, stalled). A poll of running
 * executions reuses the targets of a fresh {@link TargetCache} instead of calling ECS again.
 * ACK worker nodes among them are kept (an agent belongs on a node too) but counted and warned
 * about once per change of that set. Failures of instances no longer targeted are forgotten.
 */
export async function reconcileTargets(k: ExtContext, scope: ExtScope): Promise<void> {
  const { spec, metadata } = scope.obj;
  const cache = freshCache(k, scope);
  // Work tracked when this reconcile began (its poll ran before this phase).
  if (cache && (scope.obj.status?.executions?.length ?? 0) > 0) {
    scope.targets = cache.targets;
  } else {
    scope.targets = await resolveTargets(scope.ecs, spec.regionId, spec.targets, {
      // Instance reads of every resource in the region are batched; reachability at most a minute old.
      fleet: {
        view: scope.fleet,
        maxAgeMs: targetMaxAgeMs(scope, stateMaxAgeMs(scope)),
        listingMaxAgeMs: stateMaxAgeMs(scope),
        ...scope.view,
      },
    });
    k.live.set(metadata.uid ?? '', {
      generation: metadata.generation ?? 0,
      requested: metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION],
      readAtMs: scope.now.getTime(),
      targets: scope.targets,
    });
  }
  scope.nodeScreen = screenKubernetesNodes(scope.targets, 'warn');
  noteKubernetesNodes(k.events, scope.obj, scope.obj.status, scope.nodeScreen);
  scope.ledger.retain(new Set(scope.targets.map((t) => t.instanceId)));
}

/** The desired state an EcsExtension declares for its package (equal fingerprints agree). */
export function desiredFingerprint(obj: EcsExtension): string {
  const params = obj.spec.parameters ?? {};
  const sorted = Object.fromEntries(
    Object.keys(params)
      .sort()
      .map((key) => [key, params[key]]),
  );
  return JSON.stringify([obj.spec.packageVersion ?? 'latest', sorted]);
}

/**
 * reconcileConflicts records this resource's claim on its targets and stalls it with
 * `ConflictingResource` when an older EcsExtension declares the same package with another version
 * or parameters on overlapping instances (the older one keeps them). Resources in mode Observe
 * never act and take no part.
 */
export async function reconcileConflicts(k: ExtContext, scope: ExtScope): Promise<void> {
  const { obj } = scope;
  if (obj.spec.mode === 'Observe') {
    k.claims.remove(obj.metadata.uid ?? ''); // an observer never acts, so it never conflicts
    return;
  }
  const claim = {
    uid: obj.metadata.uid ?? '',
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    createdAt: String(obj.metadata.creationTimestamp ?? ''),
    subject: `${obj.spec.regionId}/${obj.spec.packageName}`,
    fingerprint: desiredFingerprint(obj),
    instanceIds: new Set(scope.targets.map((t) => t.instanceId)),
    inFlight: inFlightMap(scope.inFlight),
  };
  k.claims.set(claim);
  const conflict = k.claims.conflictFor(claim);
  if (conflict) {
    const h = conflict.holder;
    throw new StalledError(
      ConflictingResourceReason,
      `EcsExtension ${h.namespace}/${h.name} (older) declares ${obj.spec.packageName} with another version or parameters on ${conflict.overlap} of the same instance(s); it keeps them. Align the two specs or make their targets disjoint.`,
    );
  }
}

/** Instance → execution ID of `work`. */
function inFlightMap(work: readonly WorkItem[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of work) for (const id of w.instanceIds) m.set(id, w.executionId || 'pending');
  return m;
}

/**
 * reconcileTemplate resolves the package version (pin or latest) with OOS GetTemplate and
 * validates spec.parameters against the declared Parameters. Throws StalledError
 * (`TemplateNotFound`, `NotAPackageTemplate`, `ParameterNotDeclared`, ...) when only a spec
 * change can help.
 */
export async function reconcileTemplate(scope: ExtScope): Promise<void> {
  const { spec } = scope.obj;
  const what = `${spec.packageName}${spec.packageVersion ? ` ${spec.packageVersion}` : ''}`;
  let template;
  try {
    template = await scope.fleet.template(spec.packageName, spec.packageVersion, scope.view);
  } catch (err) {
    if (isNotFound(err)) {
      throw new StalledError(
        TemplateNotFoundReason,
        `OOS package template ${what} does not exist in region ${spec.regionId}`,
      );
    }
    throw toReconcileError(err, 'OOS GetTemplate');
  }
  if (template.templateType && template.templateType !== 'Package') {
    throw new StalledError(
      NotAPackageTemplateReason,
      `OOS template ${spec.packageName} is of type ${template.templateType}, not Package`,
    );
  }
  scope.resolvedVersion = template.templateVersion ?? spec.packageVersion;
  const problem = validateParameters(
    spec.parameters ?? {},
    template.parameters,
    `package template ${spec.packageName} ${scope.resolvedVersion ?? ''}`.trimEnd(),
  );
  if (problem) throw new StalledError(problem.reason, problem.message);
}

/**
 * reconcileExecutions is the kind's tracked-work step (the driver runs it before every other
 * phase, on Stalled objects and on the deletion path): the kit resolves pending starts, adopts
 * executions tagged with this resource's UID that status does not list (before package states are
 * read, so an execution that ends in between is seen either as running or through its effect on
 * the states, never as neither) and polls; finished executions are folded: successes clear
 * failures and imply the package state; failures are recorded in the failure memory unless the
 * instance turned out unreachable (re-checked with ECS), which is Unreachable, never Failed. When
 * the round's last execution finished, the round is counted once for the backoff.
 */
export async function reconcileExecutions(k: ExtContext, scope: ExtScope): Promise<void> {
  const { obj, now } = scope;
  const hadWork = scope.inFlight.length > 0;
  const res = await k.work.reconcile(scope);
  if (!hadWork && res.finished.length === 0) {
    k.claims.setInFlight(obj.metadata.uid ?? '', inFlightMap(scope.inFlight));
    return;
  }
  // The version this generation resolved (the template phase runs after this one).
  const version = scope.resolvedVersion ?? obj.status?.resolvedPackageVersion;
  const failed: string[] = [];
  for (const f of res.finished) {
    // Only work started for the current spec may be credited to it: after a spec change (or for
    // adopted work of unknown origin) the instance is re-read instead, so the new spec is applied.
    const forThisSpec = startedForGeneration(obj, f.work);
    for (const o of f.outcomes) {
      if (o.ok && !forThisSpec) {
        scope.ledger.clear(o.instanceId);
        scope.fleet.invalidate(o.instanceId);
      } else if (o.ok) {
        scope.ledger.clear(o.instanceId);
        // The execution's result updates the shared view: no reader re-reads the instance for it.
        scope.fleet.recordPackageState(
          o.instanceId,
          obj.spec.packageName,
          f.work.action === 'uninstall'
            ? undefined
            : {
                templateName: obj.spec.packageName,
                ...(version ? { templateVersion: version } : {}),
                parameters: obj.spec.parameters ?? {},
              },
        );
      } else {
        scope.fleet.invalidate(o.instanceId);
        failed.push(o.instanceId);
        scope.ledger.fail(o.instanceId, {
          message: o.message ?? 'failed',
          executionId: f.work.executionId,
          since: toMetaTime(now),
          round: f.work.round ?? scope.sequence,
        });
      }
    }
  }
  k.claims.setInFlight(obj.metadata.uid ?? '', inFlightMap(scope.inFlight));
  if (failed.length > 0) await reclassifyFailed(k, scope, failed);
  if (res.finished.length > 0 && scope.inFlight.length === 0) {
    scope.ledger.completeRound(scope.sequence, now, k.backoff);
  }
}

/**
 * True when `work` was started for `obj`'s current generation: its ClientToken is the one that
 * generation, round, action and batch give. False for work started under an older spec and for
 * adopted work (no token).
 */
function startedForGeneration(obj: EcsExtension, work: WorkItem): boolean {
  if (!work.clientToken || work.round === undefined || work.instanceIds.length === 0) return false;
  return (
    work.clientToken ===
    clientToken({
      uid: obj.metadata.uid ?? '',
      generation: obj.metadata.generation ?? 0,
      sequence: work.round,
      action: work.action,
      instanceIds: work.instanceIds,
    })
  );
}

/**
 * Instances whose execution item failed are re-checked with ECS: one stopped (or whose Cloud
 * Assistant agent went offline) while its execution ran is Unreachable, not Failed, and does not
 * count toward the backoff; rows show it Unreachable.
 */
async function reclassifyFailed(k: ExtContext, scope: ExtScope, failed: string[]): Promise<void> {
  const { targets, gone } = await reclassifyUnreachable(scope.ecs, scope.ledger, scope.targets, failed);
  scope.targets = targets;
  if (gone.length > 0) {
    void k.events.event(
      scope.obj,
      'Normal',
      InstanceUnreachableEvent,
      TrackExecutionAction,
      `${gone.length} instance(s) became unreachable during their execution and are not counted as failed: ${listIds(gone)}`,
    );
  }
}

/**
 * This resource's package state on each of `ids`, from the region's fleet view: data no older
 * than `maxAgeMs` (shared with every other resource), the rest read with OOS
 * ListInstancePackageStates (one call per instance; the rate gate serves these last). With
 * `spec.driftDetection` ChangeFeed (the default) the view re-reads only instances its change feed
 * saw touched, unknown or failed ones and those older than the full-resync period.
 * @throws ReconcileError mapped from the cloud failure.
 */
export async function readStates(
  scope: ExtScope,
  ids: string[],
  maxAgeMs: number,
): Promise<Map<string, PackageState | undefined>> {
  const { packageName } = scope.obj.spec;
  let all: Map<string, PackageState[]>;
  try {
    all = await scope.fleet.packageStates(ids, {
      maxAgeMs,
      driftDetection: driftDetectionOf(scope.obj.spec),
      ...scope.view,
    });
  } catch (err) {
    throw toReconcileError(err, 'OOS ListInstancePackageStates');
  }
  return new Map(ids.map((id) => [id, all.get(id)?.find((s) => s.templateName === packageName)]));
}

/**
 * How old package states may be for this reconcile: 0 (a forced re-read) when the reconcile
 * annotation asks for one, otherwise half of `spec.interval` — so drift decisions never use data
 * older than the interval, and resources sharing instances share one read per interval.
 */
export function stateMaxAgeMs(scope: ExtScope): number {
  const { metadata, spec, status } = scope.obj;
  const requested = metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
  if (requested !== undefined && requested !== status?.lastHandledReconcileAt) return 0;
  return intervalMs(spec.interval) / 2;
}

/**
 * reconcilePackageStates knows this resource's package state on every reachable target, through
 * the fleet view (see {@link readStates} and {@link stateMaxAgeMs}). Instances whose execution
 * just finished were updated in the view by reconcileExecutions (success) or dropped from it
 * (failure), so only those and instances nobody read recently cost a call.
 */
export async function reconcilePackageStates(scope: ExtScope): Promise<void> {
  const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
  scope.states = await readStates(scope, reachable, stateMaxAgeMs(scope));
}

function sameValues(want: Record<string, unknown>, got: Record<string, unknown>): boolean {
  return Object.entries(want).every(
    ([key, v]) => JSON.stringify(got[key]) === JSON.stringify(v) || String(got[key]) === String(v),
  );
}

/** True when `state` has the desired version and parameters. */
export function isUpToDate(scope: ExtScope, state: PackageState | undefined): boolean {
  if (!state) return false;
  if (scope.resolvedVersion && state.templateVersion && state.templateVersion !== scope.resolvedVersion)
    return false;
  return sameValues(scope.obj.spec.parameters ?? {}, state.parameters ?? {});
}

/**
 * reconcileInstall starts a round of executions for reachable targets that lack the desired
 * version, when writes are allowed and nothing is in flight. Failed instances wait for the
 * backoff; instances never tried (e.g. newly tagged) start at once; instances on which an
 * agreeing resource already has work in flight wait for it (one execution installs the package
 * once and every resource sees the result through the fleet view).
 */
export async function reconcileInstall(k: ExtContext, scope: ExtScope): Promise<void> {
  const { obj } = scope;
  const uid = obj.metadata.uid ?? '';
  const claim = k.claims.get(uid);
  if (claim) {
    for (const [id, work] of k.claims.inFlightByAgreeing(claim)) {
      if (!isUpToDate(scope, scope.states?.get(id))) scope.sharedInFlight.set(id, work);
    }
  }
  if (!scope.writesAllowed || scope.inFlight.length > 0) return;
  const inBackoff = scope.ledger.inBackoff(scope.now);
  /** Gaps to close: instance → install (package absent) or update (another version/parameters). */
  const gaps = new Map<string, 'install' | 'update'>();
  for (const t of scope.targets) {
    if (!t.reachable || scope.sharedInFlight.has(t.instanceId)) continue;
    const state = scope.states?.get(t.instanceId);
    if (isUpToDate(scope, state)) continue;
    if (inBackoff && scope.ledger.has(t.instanceId)) continue;
    gaps.set(t.instanceId, state ? 'update' : 'install');
  }
  if (gaps.size === 0) return;
  const install = [...gaps].filter(([, a]) => a === 'install').map(([id]) => id);
  const update = [...gaps].filter(([, a]) => a === 'update').map(([id]) => id);
  // Reserve the instances before the first await, so an agreeing resource reconciling
  // concurrently does not start the same work.
  k.claims.setInFlight(uid, new Map([...gaps.keys()].map((id) => [id, 'pending'])));
  scope.sequence += 1;
  const what = `${obj.spec.packageName} ${scope.resolvedVersion ?? ''}`.trimEnd();
  const held: LockCheck['held'] = [];
  const before = scope.inFlight.length;
  try {
    for (const [action, ids] of [
      ['install', install],
      ['update', update],
    ] as const) {
      if (ids.length === 0) continue;
      // The cross-kind lock: instances another resource (of any kind) is acting on wait for it.
      const out = await k.work.start(scope, {
        round: scope.sequence,
        action,
        instanceIds: ids,
        describe: `${action} ${what}`,
      });
      held.push(...out.held);
    }
  } finally {
    if (scope.inFlight.length === before) scope.sequence -= 1; // nothing started: no round
    k.claims.setInFlight(uid, inFlightMap(scope.inFlight));
    scope.lockWait = lockWaitOf(held) ?? scope.lockWait;
  }
}
