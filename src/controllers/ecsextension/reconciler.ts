/**
 * EcsExtension reconciler (DESIGN §1/§3): preamble (get → deletion → finalizer → stalled gate)
 * then an ordered list of phases that record facts on a scope, then one status patch.
 *
 * Cloud side: ECS DescribeInstances / DescribeCloudAssistantStatus (targets), OOS GetTemplate
 * (version + declared Parameters), OOS ListExecutions / ListTaskExecutions (tracked executions),
 * OOS ListInstancePackageStates (live state), OOS StartExecution of
 * ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL (install / update / uninstall) in batches of
 * at most 50 instances with a deterministic ClientToken and owner tags.
 */
import parseDuration from 'parse-duration';
import { FINALIZER, OWNER_UID_TAG, RECONCILE_REQUESTED_ANNOTATION } from '../../api/common.js';
import { NotAPackageTemplateReason, TemplateNotFoundReason } from '../../api/conditions.js';
import {
  CONFIGURE_PACKAGE_TEMPLATE,
  ECS_EXTENSION_KIND,
  type EcsExtension,
  type EcsExtensionStatus,
  type TrackedExecution,
} from '../../api/ecsextension.js';
import {
  TERMINAL_EXECUTION_STATUSES,
  type CloudClients,
  type Execution,
  type PackageState,
  type TaskExecution,
} from '../../cloud/types.js';
import { getCondition, toMetaTime, type Condition } from '../../runtime/conditions.js';
import { ReconcileError, StalledError, TransientError } from '../../runtime/errors.js';
import type {
  Reconciler,
  ReconcileContext,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { sanitizeText } from '../../runtime/sanitize.js';
import { isNotFound, toReconcileError } from '../shared/cloud-errors.js';
import { clientToken, OOS_BATCH_SIZE, oosRateControl, ownerTags, retryDelayMs } from '../shared/execution.js';
import { chunks } from '../../util/chunks.js';
import { validateParameters } from '../shared/parameters.js';
import { resolveTargets, type ResolvedTarget } from '../shared/targets.js';
import { instanceRows, setEcsExtensionConditions, summarize, type InstanceFact } from './status.js';

/** Writes to the Kubernetes API (status subresource and finalizers only; never spec). */
export interface KubeWriter {
  /** Writes `status` to the /status subresource when it differs from `obj.status`. */
  patchStatus(obj: EcsExtension, status: EcsExtensionStatus): Promise<unknown>;
  addFinalizer(obj: EcsExtension, finalizer: string): Promise<unknown>;
  removeFinalizer(obj: EcsExtension, finalizer: string): Promise<unknown>;
}

/** events.k8s.io/v1 recorder; never throws. `note` must already be sanitized. */
export interface EventSink {
  event(obj: EcsExtension, type: 'Normal' | 'Warning', reason: string, action: string, note: string): unknown;
}

/** Domain metrics the controller reports. */
export interface ControllerMetrics {
  executionStarted(template: string, action: string): void;
  executionFinished(template: string, status: string): void;
  setInstanceCounts(kind: string, namespace: string, name: string, counts: Record<string, number>): void;
  deleteResource(kind: string, namespace: string, name: string): void;
}

export interface EcsExtensionOptions {
  /** Bound on status.instances rows. Default 100. */
  maxInstanceRows: number;
  /** Poll delay for running executions, milliseconds: grows from min to max with execution age. */
  pollMinMs: number;
  pollMaxMs: number;
  /** Backoff for retrying failed instances, milliseconds. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const defaultEcsExtensionOptions: EcsExtensionOptions = {
  maxInstanceRows: 100,
  pollMinMs: 5_000,
  pollMaxMs: 60_000,
  retryBaseMs: 30_000,
  retryMaxMs: 30 * 60_000,
};

export interface EcsExtensionDeps {
  /** Reads the object from the informer cache. */
  getObject(namespace: string, name: string): EcsExtension | undefined;
  kube: KubeWriter;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  now?: () => Date;
  options?: Partial<EcsExtensionOptions>;
}

type Action = TrackedExecution['action'];

/** OOS execution statuses in which work may still start or run. */
const ACTIVE_EXECUTION_STATUSES = ['Started', 'Queued', 'Running', 'Waiting'] as const;

/**
 * What the last reads of a resource found, kept between reconciles so that polls of running
 * executions and the reconcile that folds their results do not re-read the whole fleet
 * (ListInstancePackageStates takes one instance per call). Valid only for the generation and
 * reconcile request it was read for, and for 90 % of `spec.interval` after the last full read,
 * so drift is still detected within one interval.
 */
interface LiveCache {
  generation: number;
  requested?: string;
  /** When every reachable target's package state was last read, ms since the epoch. */
  readAtMs: number;
  targets: ResolvedTarget[];
  states: Map<string, PackageState | undefined>;
}

/** Facts gathered during one reconcile. */
interface Scope {
  obj: EcsExtension;
  ctx: ReconcileContext;
  now: Date;
  targets: ResolvedTarget[];
  resolvedVersion?: string;
  /** Tracked executions still running after this reconcile's poll (plus any started now). */
  inFlight: TrackedExecution[];
  /** Failures not superseded by success, by instance ID. */
  failures: Map<string, { message: string; executionId?: string }>;
  /** Package states implied by executions that finished during this reconcile (success only). */
  outcomes: Map<string, PackageState | undefined>;
  /** Instances whose execution failed during this reconcile: their state must be re-read. */
  stale: Set<string>;
  states?: Map<string, PackageState | undefined>;
  sequence: number;
  retry?: EcsExtensionStatus['retry'];
}

function durationMs(value: string | undefined, fallbackMs: number): number {
  const ms = value ? parseDuration(value) : undefined;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : fallbackMs;
}

function sameValues(want: Record<string, unknown>, got: Record<string, unknown>): boolean {
  return Object.entries(want).every(
    ([k, v]) => JSON.stringify(got[k]) === JSON.stringify(v) || String(got[k]) === String(v),
  );
}

export class EcsExtensionReconciler implements Reconciler {
  private readonly opts: EcsExtensionOptions;
  private readonly now: () => Date;
  /** Live state per resource UID (see {@link LiveCache}). */
  private readonly live = new Map<string, LiveCache>();
  /**
   * The status this process last wrote, per UID. The controller is the only status writer, so
   * this is newer than or equal to the informer's copy, which lags a status patch by up to a
   * watch round trip — long enough for a poll to miss executions it just started.
   */
  private readonly written = new Map<string, EcsExtensionStatus>();
  /** UID per `namespace/name`, to drop the per-UID memory when an object is gone. */
  private readonly uidByKey = new Map<string, string>();

  constructor(private readonly deps: EcsExtensionDeps) {
    this.opts = { ...defaultEcsExtensionOptions, ...deps.options };
    this.now = deps.now ?? (() => new Date());
  }

  /** Reconciles one EcsExtension by key; see the module comment. */
  async reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    const cached = this.deps.getObject(req.namespace, req.name);
    if (!cached) {
      this.forget(this.uidByKey.get(key) ?? '');
      this.uidByKey.delete(key);
      return {};
    }
    const uid = cached.metadata.uid ?? '';
    const previousUid = this.uidByKey.get(key);
    if (previousUid !== undefined && previousUid !== uid) this.forget(previousUid); // deleted and re-created
    this.uidByKey.set(key, uid);
    const written = this.written.get(uid);
    const obj: EcsExtension = written ? { ...cached, status: written } : cached;

    if (obj.metadata.deletionTimestamp) {
      if (!obj.metadata.finalizers?.includes(FINALIZER)) return {};
      return this.reconcileDelete(obj, ctx);
    }
    if (!obj.metadata.finalizers?.includes(FINALIZER)) {
      await this.deps.kube.addFinalizer(obj, FINALIZER);
    }

    // Stalled gate: no cloud calls until the generation changes or a reconcile is requested.
    const generation = obj.metadata.generation ?? 0;
    const stalled = getCondition(obj.status?.conditions as Condition[] | undefined, 'Stalled');
    const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
    if (
      stalled?.status === 'True' &&
      stalled.observedGeneration === generation &&
      (requested === undefined || requested === obj.status?.lastHandledReconcileAt)
    ) {
      ctx.log.debug({ reason: stalled.reason }, 'stalled for this generation; skipping');
      return {};
    }

    const scope = this.newScope(obj, ctx);
    try {
      await this.reconcileTargets(scope);
      await this.reconcileTemplate(scope);
      await this.reconcileExecutions(scope);
      await this.reconcileAdoption(scope);
      await this.reconcilePackageStates(scope);
      await this.reconcileInstall(scope);
    } catch (err) {
      const rerr = err instanceof ReconcileError ? err : toReconcileError(err, 'reconcile');
      await this.writeStatus(scope, rerr);
      if (rerr instanceof StalledError) {
        this.deps.events.event(obj, 'Warning', rerr.reason, 'Reconcile', rerr.message);
      }
      this.live.delete(uid);
      throw rerr;
    }
    await this.writeStatus(scope);
    return { requeueAfterMs: this.requeueAfter(scope) };
  }

  /** Drops what this process remembers about a resource UID. */
  private forget(uid: string): void {
    this.live.delete(uid);
    this.written.delete(uid);
  }

  private newScope(obj: EcsExtension, ctx: ReconcileContext): Scope {
    const failures = new Map<string, { message: string; executionId?: string }>();
    for (const row of obj.status?.instances ?? []) {
      if (row.state === 'Failed')
        failures.set(row.instanceId, { message: row.message ?? 'failed', executionId: row.executionId });
    }
    return {
      obj,
      ctx,
      now: this.now(),
      targets: [],
      inFlight: [...(obj.status?.executions ?? [])],
      failures,
      outcomes: new Map(),
      stale: new Set(),
      sequence: obj.status?.executionSequence ?? 0,
      retry: obj.status?.retry,
    };
  }

  /**
   * reconcileTargets resolves spec.targets (throws InstanceNotFound, stalled). A poll of running
   * executions reuses the targets of a fresh {@link LiveCache} instead of calling ECS again.
   */
  private async reconcileTargets(scope: Scope): Promise<void> {
    const { spec } = scope.obj;
    const cache = this.freshCache(scope);
    if (cache && scope.inFlight.length > 0) {
      scope.targets = cache.targets;
      return;
    }
    scope.targets = await resolveTargets(this.deps.cloud.ecs(spec.regionId), spec.regionId, spec.targets);
  }

  /** The resource's {@link LiveCache} if it is still valid for this reconcile. */
  private freshCache(scope: Scope): LiveCache | undefined {
    const { metadata, spec } = scope.obj;
    const cache = this.live.get(metadata.uid ?? '');
    if (!cache) return undefined;
    const intervalMs = durationMs(spec.interval, 10 * 60_000);
    const fresh =
      cache.generation === (metadata.generation ?? 0) &&
      cache.requested === metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION] &&
      scope.now.getTime() - cache.readAtMs < 0.9 * intervalMs;
    return fresh ? cache : undefined;
  }

  /**
   * reconcileTemplate resolves the package version (pin or latest) with OOS GetTemplate and
   * validates spec.parameters against the declared Parameters. Throws StalledError
   * (`TemplateNotFound`, `NotAPackageTemplate`, `ParameterNotDeclared`, ...) when only a spec
   * change can help.
   */
  private async reconcileTemplate(scope: Scope): Promise<void> {
    const { spec } = scope.obj;
    const oos = this.deps.cloud.oos(spec.regionId);
    const what = `${spec.packageName}${spec.packageVersion ? ` ${spec.packageVersion}` : ''}`;
    let template;
    try {
      template = await oos.getTemplate(spec.packageName, spec.packageVersion);
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
   * reconcileExecutions polls the executions tracked in status (OOS ListExecutions by ID).
   * Finished ones are folded into per-instance results (OOS ListTaskExecutions loop children),
   * emit Events and metrics, and drive the retry backoff.
   */
  private async reconcileExecutions(scope: Scope): Promise<void> {
    const oos = this.deps.cloud.oos(scope.obj.spec.regionId);
    // Read every tracked execution first (the cloud layer rate-limits the fan-out), so a failed
    // read leaves nothing half-processed: results and Events of a finished execution are
    // recorded exactly once, in the reconcile that also drops it from status.
    let listed: Array<Execution | undefined>;
    try {
      listed = await Promise.all(scope.inFlight.map((t) => oos.getExecution(t.executionId)));
    } catch (err) {
      throw toReconcileError(err, 'OOS ListExecutions');
    }
    const still: TrackedExecution[] = [];
    const finished: Array<{ tracked: TrackedExecution; exec: Execution }> = [];
    for (const [i, tracked] of scope.inFlight.entries()) {
      const exec = listed[i];
      if (!exec) {
        scope.ctx.log.warn(
          { executionId: tracked.executionId },
          'tracked execution no longer listed by OOS; dropping it',
        );
      } else if (TERMINAL_EXECUTION_STATUSES.includes(exec.status)) {
        finished.push({ tracked, exec });
      } else {
        still.push(tracked);
      }
    }
    let children: TaskExecution[][];
    try {
      children = await Promise.all(
        finished.map(({ exec }) =>
          oos.listTaskExecutions({ executionId: exec.executionId, includeChildTaskExecution: true }),
        ),
      );
    } catch (err) {
      throw toReconcileError(err, 'OOS ListTaskExecutions');
    }
    let failedThisRound = 0;
    for (const [i, { tracked, exec }] of finished.entries()) {
      failedThisRound += this.collectResults(scope, tracked, exec, children[i] ?? []);
    }
    const finishedAny = finished.length > 0;
    scope.inFlight = still;
    if (finishedAny) {
      if (failedThisRound > 0) {
        const failures = (scope.retry?.failures ?? 0) + 1;
        const delay = retryDelayMs(failures, this.opts.retryBaseMs, this.opts.retryMaxMs);
        scope.retry = { failures, nextRetryTime: toMetaTime(new Date(scope.now.getTime() + delay)) };
      } else if (scope.failures.size === 0) {
        scope.retry = undefined;
      }
    }
  }

  /**
   * Records per-instance outcomes of a finished execution from its loop children (OOS
   * ListTaskExecutions), emits its Event and metric; returns how many instances failed.
   */
  private collectResults(
    scope: Scope,
    tracked: TrackedExecution,
    exec: Execution,
    children: TaskExecution[],
  ): number {
    const { obj } = scope;
    const byInstance = new Map<string, { status: string; message?: string }>();
    for (const t of children) {
      if (t.loopItem && t.loopItem.startsWith('i-'))
        byInstance.set(t.loopItem, { status: t.status, message: t.statusMessage });
    }
    const failed: string[] = [];
    for (const id of tracked.instanceIds) {
      const r = byInstance.get(id);
      const ok = r ? r.status === 'Success' : exec.status === 'Success';
      if (ok) {
        scope.failures.delete(id);
        scope.outcomes.set(
          id,
          tracked.action === 'uninstall'
            ? undefined
            : {
                templateName: obj.spec.packageName,
                templateVersion: scope.resolvedVersion,
                parameters: obj.spec.parameters ?? {},
              },
        );
      } else {
        scope.stale.add(id);
        const why = r?.message || r?.status || exec.statusMessage || `execution ${exec.status}`;
        scope.failures.set(id, { message: sanitizeText(why).slice(0, 512), executionId: exec.executionId });
        failed.push(id);
      }
    }
    this.deps.metrics.executionFinished(CONFIGURE_PACKAGE_TEMPLATE, exec.status);
    if (failed.length === 0 && exec.status === 'Success') {
      this.deps.events.event(
        obj,
        'Normal',
        'ExecutionSucceeded',
        tracked.action,
        `OOS execution ${exec.executionId} (${tracked.action}) succeeded on ${tracked.instanceIds.length} instance(s)`,
      );
    } else {
      const first = failed[0];
      const detail = first ? `; ${first}: ${scope.failures.get(first)?.message ?? ''}` : '';
      this.deps.events.event(
        obj,
        'Warning',
        'ExecutionFailed',
        tracked.action,
        sanitizeText(
          `OOS execution ${exec.executionId} (${tracked.action}) ended ${exec.status}: ${failed.length} of ${tracked.instanceIds.length} instance(s) failed${detail}`,
        ).slice(0, 1024),
      );
    }
    return failed.length;
  }

  /**
   * reconcilePackageStates knows the package state of every reachable target. With a fresh
   * {@link LiveCache} it folds in the outcomes of executions that just finished and reads only
   * targets it has no state for (new or failed ones); otherwise (first visit, spec change,
   * reconcile request, or `interval` elapsed: the drift check) it reads them all.
   */
  private async reconcilePackageStates(scope: Scope): Promise<void> {
    const { metadata } = scope.obj;
    const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
    const cache = this.freshCache(scope);
    if (cache) {
      for (const [id, state] of scope.outcomes) cache.states.set(id, state);
      for (const id of scope.stale) cache.states.delete(id);
      const missing = reachable.filter((id) => !cache.states.has(id));
      for (const [id, state] of await this.readStates(scope, missing)) cache.states.set(id, state);
      cache.targets = scope.targets;
      scope.states = cache.states;
      return;
    }
    scope.states = await this.readStates(scope, reachable);
    this.live.set(metadata.uid ?? '', {
      generation: metadata.generation ?? 0,
      requested: metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION],
      readAtMs: scope.now.getTime(),
      targets: scope.targets,
      states: scope.states,
    });
  }

  private async readStates(scope: Scope, ids: string[]): Promise<Map<string, PackageState | undefined>> {
    const { spec } = scope.obj;
    const oos = this.deps.cloud.oos(spec.regionId);
    const states = new Map<string, PackageState | undefined>();
    try {
      await Promise.all(
        ids.map(async (id) => {
          const list = await oos.listInstancePackageStates(id, [spec.packageName]);
          states.set(
            id,
            list.find((s) => s.templateName === spec.packageName),
          );
        }),
      );
    } catch (err) {
      throw toReconcileError(err, 'OOS ListInstancePackageStates');
    }
    return states;
  }

  private isUpToDate(scope: Scope, state: PackageState | undefined): boolean {
    if (!state) return false;
    if (scope.resolvedVersion && state.templateVersion && state.templateVersion !== scope.resolvedVersion)
      return false;
    return sameValues(scope.obj.spec.parameters ?? {}, state.parameters ?? {});
  }

  /**
   * reconcileInstall starts executions for reachable targets that lack the desired version, in
   * Enforce mode, when not suspended and nothing is in flight. Before starting it adopts any
   * running execution tagged with this resource's UID (a crash after StartExecution but before
   * the status write), so no duplicate execution is started.
   */
  private async reconcileInstall(scope: Scope): Promise<void> {
    const { spec } = scope.obj;
    if (spec.mode === 'Observe' || spec.suspend || scope.inFlight.length > 0) return;
    const inBackoff = scope.retry && Date.parse(scope.retry.nextRetryTime) > scope.now.getTime();
    const install: string[] = [];
    const update: string[] = [];
    for (const t of scope.targets) {
      if (!t.reachable) continue;
      const state = scope.states?.get(t.instanceId);
      if (this.isUpToDate(scope, state)) continue;
      if (inBackoff && scope.failures.has(t.instanceId)) continue;
      (state ? update : install).push(t.instanceId);
    }
    if (install.length + update.length === 0) return;
    scope.sequence += 1;
    await this.start(scope, 'install', install);
    await this.start(scope, 'update', update);
  }

  /**
   * reconcileAdoption tracks running executions tagged with this resource's UID that status does
   * not list (a crash after StartExecution but before the status write, or a stale informer
   * cache right after one). It runs BEFORE package states are read, so an execution that ends in
   * between is seen either as running (tracked, nothing new starts) or through its effect on the
   * package states — never as neither. Skipped when status already tracks executions.
   */
  private async reconcileAdoption(scope: Scope): Promise<void> {
    const { spec } = scope.obj;
    if (scope.inFlight.length > 0 || spec.suspend || spec.mode === 'Observe') return;
    await this.adoptRunning(scope);
  }

  /** Tracks running executions tagged with this resource's UID that status does not know. */
  private async adoptRunning(scope: Scope): Promise<void> {
    const { obj } = scope;
    const oos = this.deps.cloud.oos(obj.spec.regionId);
    let owned: Execution[];
    try {
      // One ListExecutions per non-terminal status keeps the answer small however long the
      // resource's execution history grows.
      const tags = { [OWNER_UID_TAG]: obj.metadata.uid ?? '' };
      const pages = await Promise.all(
        ACTIVE_EXECUTION_STATUSES.map((status) => oos.listAllExecutions({ tags, status })),
      );
      owned = pages.flat();
    } catch (err) {
      throw toReconcileError(err, 'OOS ListExecutions');
    }
    const known = new Set(scope.inFlight.map((e) => e.executionId));
    for (const exec of owned) {
      if (known.has(exec.executionId)) continue;
      const targets = exec.parameters.targets as { ResourceIds?: string[] } | string | undefined;
      const parsed =
        typeof targets === 'string' ? (JSON.parse(targets) as { ResourceIds?: string[] }) : targets;
      const action = String(exec.parameters.action ?? 'install') as Action;
      scope.inFlight.push({
        executionId: exec.executionId,
        action,
        instanceIds: parsed?.ResourceIds ?? [],
        clientToken: '',
        startTime: exec.startDate ?? exec.createDate ?? toMetaTime(scope.now),
      });
      scope.ctx.log.info(
        { executionId: exec.executionId },
        'adopted running execution owned by this resource',
      );
    }
  }

  /** Starts `action` executions on `ids` in batches of at most 50 (OOS StartExecution). */
  private async start(scope: Scope, action: Action, ids: string[]): Promise<void> {
    const { obj } = scope;
    const { spec, metadata } = obj;
    const oos = this.deps.cloud.oos(spec.regionId);
    for (const batch of chunks([...ids].sort(), OOS_BATCH_SIZE)) {
      const token = clientToken({
        uid: metadata.uid ?? '',
        generation: metadata.generation ?? 0,
        sequence: scope.sequence,
        action,
        instanceIds: batch,
      });
      const parameters: Record<string, unknown> = {
        action,
        packageName: spec.packageName,
        targets: { Type: 'ResourceIds', RegionId: spec.regionId, ResourceIds: batch },
        rateControl: oosRateControl(spec.rateControl),
        parameters: spec.parameters ?? {},
      };
      if (action !== 'uninstall' && scope.resolvedVersion) parameters.packageVersion = scope.resolvedVersion;
      let exec: Execution;
      try {
        exec = await oos.startExecution({
          templateName: CONFIGURE_PACKAGE_TEMPLATE,
          parameters,
          clientToken: token,
          tags: ownerTags(
            ECS_EXTENSION_KIND,
            metadata.namespace ?? '',
            metadata.name ?? '',
            metadata.uid ?? '',
          ),
          mode: 'Automatic',
          safetyCheck: 'Skip',
          description: `ecsops ${ECS_EXTENSION_KIND} ${metadata.namespace}/${metadata.name} ${action}`,
        });
      } catch (err) {
        // Whatever started before this failure is recorded by the status write in the caller.
        throw toReconcileError(err, 'OOS StartExecution');
      }
      scope.inFlight.push({
        executionId: exec.executionId,
        action,
        instanceIds: batch,
        clientToken: token,
        startTime: toMetaTime(scope.now),
      });
      this.deps.metrics.executionStarted(CONFIGURE_PACKAGE_TEMPLATE, action);
      this.deps.events.event(
        obj,
        'Normal',
        'ExecutionStarted',
        action,
        `Started OOS execution ${exec.executionId} (${action} ${spec.packageName} ${scope.resolvedVersion ?? ''}) on ${batch.length} instance(s)`.replace(
          / \)/,
          ')',
        ),
      );
      scope.ctx.log.info(
        { executionId: exec.executionId, action, instances: batch.length },
        'started execution',
      );
    }
  }

  /** Facts per targeted instance for status derivation. */
  private facts(scope: Scope): InstanceFact[] {
    const inFlightBy = new Map<string, string>();
    for (const e of scope.inFlight) for (const id of e.instanceIds) inFlightBy.set(id, e.executionId);
    return scope.targets.map((t) => {
      const state = scope.states?.get(t.instanceId);
      const upToDate = t.reachable && this.isUpToDate(scope, state);
      const f: InstanceFact = {
        instanceId: t.instanceId,
        reachable: t.reachable,
        unreachableReason: t.unreachableReason,
        installedVersion: state?.templateVersion,
        upToDate,
        inFlightExecutionId: inFlightBy.get(t.instanceId),
      };
      const failure = scope.failures.get(t.instanceId);
      if (failure && !upToDate) f.failure = failure;
      return f;
    });
  }

  /** Derives and patches status once (skipped by the writer when unchanged). */
  private async writeStatus(scope: Scope, err?: ReconcileError): Promise<void> {
    const { obj } = scope;
    const prev = obj.status ?? {};
    const generation = obj.metadata.generation ?? 0;
    const status: EcsExtensionStatus = { ...prev };
    // Per-instance facts need this reconcile's package states; without them (an error before the
    // read) the previous summary and rows stay as they were instead of showing everything Pending.
    const facts = scope.states ? this.facts(scope) : undefined;
    const retrying = err instanceof TransientError ? { reason: err.reason, message: err.message } : undefined;
    const stalled = err instanceof StalledError ? { reason: err.reason, message: err.message } : undefined;

    if (facts && !stalled) {
      const summary = summarize(facts);
      status.summary = summary;
      status.instances = instanceRows(
        facts,
        prev.instances,
        scope.resolvedVersion,
        this.opts.maxInstanceRows,
        scope.now,
      );
      this.deps.metrics.setInstanceCounts(
        ECS_EXTENSION_KIND,
        obj.metadata.namespace ?? '',
        obj.metadata.name ?? '',
        summary,
      );
    }
    if (scope.resolvedVersion) status.resolvedPackageVersion = scope.resolvedVersion;
    status.executions = scope.inFlight;
    if (scope.inFlight.length === 0) delete status.executions;
    if (scope.sequence > 0) status.executionSequence = scope.sequence;
    if (scope.retry && scope.failures.size > 0) status.retry = scope.retry;
    else delete status.retry;

    const failedList = facts
      ? facts
          .filter((f) => f.failure && !f.inFlightExecutionId && f.reachable)
          .map((f) => ({ instanceId: f.instanceId, message: f.failure?.message ?? '' }))
      : [];
    status.conditions = setEcsExtensionConditions(
      prev.conditions as Condition[] | undefined,
      {
        generation,
        packageName: obj.spec.packageName,
        desiredVersion: scope.resolvedVersion,
        summary: status.summary,
        failed: failedList,
        stalled,
        retrying,
        deleting: Boolean(obj.metadata.deletionTimestamp),
        observe: obj.spec.mode === 'Observe',
        suspended: Boolean(obj.spec.suspend),
        nextRetryTime: status.retry?.nextRetryTime,
      },
      scope.now,
    );
    if (!retrying) {
      status.observedGeneration = generation;
      const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_ANNOTATION];
      if (requested !== undefined) status.lastHandledReconcileAt = requested;
    }
    await this.deps.kube.patchStatus(obj, status);
    this.written.set(obj.metadata.uid ?? '', status);
  }

  /**
   * The lowest of: execution poll delay, failed-instance retry time, and the drift interval.
   * Milliseconds; the controller adds ±5 % jitter.
   */
  private requeueAfter(scope: Scope): number {
    const candidates = [durationMs(scope.obj.spec.interval, 10 * 60_000)];
    if (scope.inFlight.length > 0) {
      const oldest = Math.min(...scope.inFlight.map((e) => Date.parse(e.startTime) || scope.now.getTime()));
      const age = scope.now.getTime() - oldest;
      candidates.push(Math.min(this.opts.pollMaxMs, Math.max(this.opts.pollMinMs, age / 4)));
    }
    if (
      scope.retry &&
      scope.failures.size > 0 &&
      !scope.obj.spec.suspend &&
      scope.obj.spec.mode !== 'Observe'
    ) {
      candidates.push(
        Math.max(this.opts.pollMinMs, Date.parse(scope.retry.nextRetryTime) - scope.now.getTime()),
      );
    }
    return Math.max(1, Math.round(Math.min(...candidates)));
  }

  /**
   * reconcileDelete runs while the finalizer is present. Orphan: remove the finalizer at once.
   * Uninstall: uninstall the package from every reachable instance that has it (batches of 50),
   * wait for those executions, then remove the finalizer. Unreachable instances cannot be
   * uninstalled and are skipped with a Warning Event.
   */
  private async reconcileDelete(obj: EcsExtension, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { metadata, spec } = obj;
    const done = async (): Promise<ReconcileResult> => {
      await this.deps.kube.removeFinalizer(obj, FINALIZER);
      this.forget(metadata.uid ?? '');
      this.deps.metrics.deleteResource(ECS_EXTENSION_KIND, metadata.namespace ?? '', metadata.name ?? '');
      return {};
    };
    if ((spec.deletionPolicy ?? 'Orphan') === 'Orphan' || spec.mode === 'Observe') return done();

    const scope = this.newScope(obj, ctx);
    try {
      // Listed instances that no longer exist cannot hold the package: uninstall from the rest.
      scope.targets = await resolveTargets(this.deps.cloud.ecs(spec.regionId), spec.regionId, spec.targets, {
        missing: 'skip',
      });
      await this.reconcileExecutions(scope);
      if (scope.inFlight.length === 0) await this.adoptRunning(scope);
      if (scope.inFlight.length > 0) {
        scope.states = this.live.get(metadata.uid ?? '')?.states;
        await this.writeStatus(scope);
        return { requeueAfterMs: this.requeueAfter(scope) };
      }
      const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
      scope.states = await this.readStates(scope, reachable);
      const installed = reachable.filter((id) => scope.states?.get(id));
      if (installed.length === 0) {
        const skipped = scope.targets.filter((t) => !t.reachable).map((t) => t.instanceId);
        if (skipped.length > 0) {
          this.deps.events.event(
            obj,
            'Warning',
            'UninstallSkipped',
            'uninstall',
            `${skipped.length} unreachable instance(s) were not uninstalled: ${skipped.slice(0, 5).join(', ')}`,
          );
        }
        return done();
      }
      const inBackoff = scope.retry && Date.parse(scope.retry.nextRetryTime) > scope.now.getTime();
      if (!inBackoff) {
        scope.sequence += 1;
        await this.start(scope, 'uninstall', installed);
      }
    } catch (err) {
      const rerr = err instanceof ReconcileError ? err : toReconcileError(err, 'reconcile deletion');
      await this.writeStatus(
        scope,
        rerr instanceof StalledError ? new TransientError(rerr.reason, rerr.message) : rerr,
      );
      throw rerr instanceof StalledError ? new TransientError(rerr.reason, rerr.message) : rerr;
    }
    await this.writeStatus(scope);
    return { requeueAfterMs: this.requeueAfter(scope) };
  }
}
