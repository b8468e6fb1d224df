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
import type { EcsApi, OosApi, PackageState } from '../../cloud/types.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import type { ClaimRegistry } from '../shared/claims.js';
import { isNotFound, toReconcileError } from '../shared/cloud-errors.js';
import type { EventSink } from '../shared/deps.js';
import { intervalMs, type BaseScope } from '../shared/driver.js';
import type { OosExecutionTracker } from '../shared/oos-tracker.js';
import { validateParameters } from '../shared/parameters.js';
import type { BackoffOptions, FailureLedger } from '../shared/retry.js';
import { listIds, recheckReachability, resolveTargets, type ResolvedTarget } from '../shared/targets.js';
import type { WorkItem } from '../shared/work.js';

/**
 * What the last full read of a resource found, kept between reconciles so that polls of running
 * executions and the reconcile that folds their results do not re-read the whole fleet
 * (ListInstancePackageStates takes one instance per call). Valid only for the generation and
 * reconcile request it was read for, and for 90 % of `spec.interval` after the last full read, so
 * drift is still detected within one interval.
 */
export interface LiveCache {
  generation: number;
  requested?: string;
  /** When every reachable target's package state was last read, ms since the epoch. */
  readAtMs: number;
  targets: ResolvedTarget[];
  states: Map<string, PackageState | undefined>;
}

/** Per-process state and clients the phases share. */
export interface ExtContext {
  live: Map<string, LiveCache>;
  claims: ClaimRegistry;
  events: EventSink;
  backoff: BackoffOptions;
}

/** Facts gathered during one EcsExtension reconcile. */
export interface ExtScope extends BaseScope<EcsExtension> {
  oos: OosApi;
  ecs: EcsApi;
  tracker: OosExecutionTracker;
  targets: ResolvedTarget[];
  resolvedVersion?: string;
  /** Work still running after this reconcile's poll (plus any started now). */
  inFlight: WorkItem[];
  /** Failure memory and round backoff (status.retry). */
  ledger: FailureLedger;
  /** Package states implied by executions that finished during this reconcile (success only). */
  outcomes: Map<string, PackageState | undefined>;
  /** Instances whose execution failed during this reconcile: their state must be re-read. */
  stale: Set<string>;
  states?: Map<string, PackageState | undefined>;
  sequence: number;
}

/** The resource's {@link LiveCache} if it is still valid for this reconcile. */
export function freshCache(k: ExtContext, scope: ExtScope): LiveCache | undefined {
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
 * executions reuses the targets of a fresh {@link LiveCache} instead of calling ECS again.
 * Failures of instances no longer targeted are forgotten.
 */
export async function reconcileTargets(k: ExtContext, scope: ExtScope): Promise<void> {
  const { spec } = scope.obj;
  const cache = freshCache(k, scope);
  scope.targets =
    cache && scope.inFlight.length > 0
      ? cache.targets
      : await resolveTargets(scope.ecs, spec.regionId, spec.targets);
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
    template = await scope.oos.getTemplate(spec.packageName, spec.packageVersion);
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
 * reconcileExecutions polls the tracked executions through the shared tracker and folds finished
 * ones: successes clear failures and imply the package state; failures are recorded in the
 * failure memory unless the instance turned out unreachable (re-checked with ECS), which is
 * Unreachable, never Failed. When the round's last execution finished, the round is counted once
 * for the backoff.
 */
export async function reconcileExecutions(k: ExtContext, scope: ExtScope): Promise<void> {
  if (scope.inFlight.length === 0) return;
  const { obj, now } = scope;
  const res = await scope.tracker.poll(obj, scope.inFlight);
  for (const w of res.vanished) {
    scope.ctx.log.warn(
      { executionId: w.executionId },
      'tracked execution no longer listed by OOS; dropping it',
    );
  }
  const failed: string[] = [];
  for (const f of res.finished) {
    for (const o of f.outcomes) {
      if (o.ok) {
        scope.ledger.clear(o.instanceId);
        scope.outcomes.set(
          o.instanceId,
          f.work.action === 'uninstall'
            ? undefined
            : {
                templateName: obj.spec.packageName,
                templateVersion: scope.resolvedVersion,
                parameters: obj.spec.parameters ?? {},
              },
        );
      } else {
        scope.stale.add(o.instanceId);
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
  scope.inFlight = res.running;
  if (failed.length > 0) await reclassifyUnreachable(k, scope, failed);
  if (res.finished.length > 0 && scope.inFlight.length === 0) {
    scope.ledger.completeRound(scope.sequence, now, k.backoff);
  }
}

/**
 * Re-checks instances whose execution item failed: one stopped (or whose Cloud Assistant agent
 * went offline) while its execution ran is Unreachable, not Failed, and does not count toward the
 * backoff. Updates the scope's targets so rows show it Unreachable.
 */
async function reclassifyUnreachable(k: ExtContext, scope: ExtScope, failed: string[]): Promise<void> {
  const now = await recheckReachability(scope.ecs, failed);
  const gone: string[] = [];
  for (const id of failed) {
    const r = now.get(id);
    if (!r || r.reachable) continue;
    scope.ledger.clear(id);
    gone.push(id);
    const i = scope.targets.findIndex((t) => t.instanceId === id);
    const target = scope.targets[i];
    if (target) {
      scope.targets = [...scope.targets];
      scope.targets[i] = { ...target, reachable: false, unreachableReason: r.unreachableReason };
    }
  }
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
 * reconcileAdoption tracks running executions tagged with this resource's UID that status does
 * not list (a crash after StartExecution but before the status write, or a stale informer cache
 * right after one). It runs BEFORE package states are read, so an execution that ends in between
 * is seen either as running (tracked, nothing new starts) or through its effect on the package
 * states — never as neither. Skipped when status already tracks executions or writes are off.
 */
export async function reconcileAdoption(scope: ExtScope): Promise<void> {
  if (scope.inFlight.length > 0 || !scope.writesAllowed) return;
  const adopted = await scope.tracker.adopt(scope.obj, new Set(), scope.now);
  for (const w of adopted) {
    scope.ctx.log.info({ executionId: w.executionId }, 'adopted running execution owned by this resource');
  }
  scope.inFlight.push(...adopted);
}

/** ListInstancePackageStates of `ids` (one call per instance; the cloud layer rate-limits). */
export async function readStates(
  scope: ExtScope,
  ids: string[],
): Promise<Map<string, PackageState | undefined>> {
  const { packageName } = scope.obj.spec;
  const states = new Map<string, PackageState | undefined>();
  try {
    await Promise.all(
      ids.map(async (id) => {
        const list = await scope.oos.listInstancePackageStates(id, [packageName]);
        states.set(
          id,
          list.find((s) => s.templateName === packageName),
        );
      }),
    );
  } catch (err) {
    throw toReconcileError(err, 'OOS ListInstancePackageStates');
  }
  return states;
}

/**
 * reconcilePackageStates knows the package state of every reachable target. With a fresh
 * {@link LiveCache} it folds in the outcomes of executions that just finished and reads only
 * targets it has no state for (new or failed ones); otherwise (first visit, spec change,
 * reconcile request, or `interval` elapsed: the drift check) it reads them all.
 */
export async function reconcilePackageStates(k: ExtContext, scope: ExtScope): Promise<void> {
  const { metadata } = scope.obj;
  const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
  const cache = freshCache(k, scope);
  if (cache) {
    for (const [id, state] of scope.outcomes) cache.states.set(id, state);
    for (const id of scope.stale) cache.states.delete(id);
    const missing = reachable.filter((id) => !cache.states.has(id));
    for (const [id, state] of await readStates(scope, missing)) cache.states.set(id, state);
    cache.targets = scope.targets;
    scope.states = cache.states;
    return;
  }
  scope.states = await readStates(scope, reachable);
  k.live.set(metadata.uid ?? '', {
    generation: metadata.generation ?? 0,
    requested: metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION],
    readAtMs: scope.now.getTime(),
    targets: scope.targets,
    states: scope.states,
  });
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
 * backoff; instances never tried (e.g. newly tagged) start at once.
 */
export async function reconcileInstall(scope: ExtScope): Promise<void> {
  const { obj } = scope;
  if (!scope.writesAllowed || scope.inFlight.length > 0) return;
  const inBackoff = scope.ledger.inBackoff(scope.now);
  const install: string[] = [];
  const update: string[] = [];
  for (const t of scope.targets) {
    if (!t.reachable) continue;
    const state = scope.states?.get(t.instanceId);
    if (isUpToDate(scope, state)) continue;
    if (inBackoff && scope.ledger.has(t.instanceId)) continue;
    (state ? update : install).push(t.instanceId);
  }
  if (install.length + update.length === 0) return;
  scope.sequence += 1;
  const what = `${obj.spec.packageName} ${scope.resolvedVersion ?? ''}`.trimEnd();
  for (const [action, ids] of [
    ['install', install],
    ['update', update],
  ] as const) {
    if (ids.length === 0) continue;
    await scope.tracker.start(
      obj,
      { round: scope.sequence, action, instanceIds: ids, describe: `${action} ${what}` },
      scope.inFlight,
      scope.now,
    );
  }
}
