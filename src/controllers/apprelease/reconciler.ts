/**
 * AppRelease reconciler (DESIGN §1/§3) on the shared kit: the {@link ReconcileDriver} runs the
 * preamble, gates and the one status write; this file wires the phases ({@link ./phases.ts}), the
 * deletion step ({@link ./delete.ts}), the status derivation ({@link ./status.ts}) and the Cloud
 * Assistant {@link InvocationTracker} that runs the wrapper ({@link ./wrapper.ts}).
 */
import { trafficScopeOf } from '../shared/traffic.js';
import { APP_RELEASE_KIND, type AppRelease } from '../../api/apprelease.js';
import type { CloudClients } from '../../cloud/types.js';
import type {
  ReconcileContext,
  Reconciler,
  ReconcileRequest,
  ReconcileResult,
} from '../../runtime/controller.js';
import { checkAnalysisSpec, prometheusQueryFns, type QueryFnFactory } from '../shared/analysis-run.js';
import { ClaimRegistry } from '../shared/claims.js';
import type { ControllerMetrics, EventSink, KitDeps, KubeWriter, ObjectReader } from '../shared/deps.js';
import {
  intervalMs,
  ReconcileDriver,
  type BaseScope,
  type DriverOptions,
  type KindHooks,
} from '../shared/driver.js';
import { InvocationTracker, type CommandSpec } from '../shared/invocation-tracker.js';
import type { InstanceLock } from '../shared/lock.js';
import { WorkKit } from '../shared/start.js';
import { FailureLedger } from '../shared/retry.js';
import { fromTracked, pollDelayMs } from '../shared/work.js';
import {
  ConflictingReleaseReason,
  InvalidSecretValueReason,
  SecretForbiddenReason,
  SecretNotFoundReason,
} from '../../api/conditions.js';
import { reconcileDelete } from './delete.js';
import type { AppReleaseMetrics } from './metrics.js';
import { reconcileInvocations } from './fold.js';
import { advanceRollout } from './rollout.js';
import { redact, type AppContext, type AppScope } from './scope.js';
import { forgetSecretValues, secretEnvVars } from './secrets.js';
import type { SecretReader } from '../shared/secrets.js';
import { preloadSecrets, reconcileSecrets } from './secret-delivery.js';
import { APP_DIR_CLAIMS, checkHostInput } from './safety.js';
import { stableMaterial } from './stable.js';
import { reconcileConflicts, reconcileTargets } from './targets.js';
import { deriveAppReleaseStatus } from './status.js';
import {
  commandParameters,
  commandTimeoutSeconds,
  renderCommand,
  revisionOf,
  type WrapperAction,
  type WrapperInput,
} from './wrapper.js';

/** `ecsops_executions_*{template}` label of AppRelease invocations. */
export const APP_RELEASE_METRIC_LABEL = 'RunCommand:apprelease';

export interface AppReleaseOptions extends DriverOptions {
  /** Bound on status.instances rows. Default 100. */
  maxInstanceRows: number;
  /** Poll delay for running batches, milliseconds (grows from min to max with batch age). */
  pollMinMs: number;
  pollMaxMs: number;
  /** Backoff for re-enrolling instances that failed outside a rollout, milliseconds. */
  retryBaseMs: number;
  retryMaxMs: number;
  stalledRecheckMs: number;
}

export const defaultAppReleaseOptions: AppReleaseOptions = {
  maxInstanceRows: 100,
  pollMinMs: 5_000,
  pollMaxMs: 60_000,
  retryBaseMs: 30_000,
  retryMaxMs: 30 * 60_000,
  stalledRecheckMs: 10 * 60_000,
};

export interface AppReleaseDeps {
  objects: ObjectReader<AppRelease>;
  kube: KubeWriter<AppRelease>;
  cloud: CloudClients;
  events: EventSink;
  /** The shared domain metrics (executions, ecsops_resource_instances). */
  metrics: ControllerMetrics;
  /** The AppRelease metric families. */
  appMetrics: AppReleaseMetrics;
  /** The process's cross-kind instance lock (optional: without it, batches never wait). */
  lock?: InstanceLock;
  /**
   * Reads the Secrets `install.envVars[].valueFrom.secretKeyRef` names (GET in the object's
   * namespace). Absent: such an AppRelease is Stalled `SecretForbidden`.
   */
  secrets?: SecretReader;
  /**
   * Builds the query function of `spec.analysis` (tests: a fake). Default: the Prometheus HTTP
   * client, with the bearer token and CA read by `secrets`.
   */
  analysisQuery?: QueryFnFactory;
  now?: () => Date;
  options?: Partial<AppReleaseOptions>;
}

/** The AppRelease reconciler: the shared driver with this kind's hooks. */
export class AppReleaseReconciler implements Reconciler {
  private readonly driver: ReconcileDriver<AppRelease, AppScope>;
  private readonly opts: AppReleaseOptions;
  private readonly k: AppContext;

  constructor(private readonly deps: AppReleaseDeps) {
    this.opts = { ...defaultAppReleaseOptions, ...deps.options };
    this.k = {
      claims: new ClaimRegistry(),
      appDirClaims: new ClaimRegistry(APP_DIR_CLAIMS),
      events: deps.events,
      metrics: deps.appMetrics,
      backoff: { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs },
      adoptionChecked: new Set(),
      analysis: {
        queryFn: deps.analysisQuery ?? prometheusQueryFns(deps.secrets),
        metrics: deps.metrics,
      },
      ...(deps.lock ? { lock: deps.lock } : {}),
      work: new WorkKit(deps.lock ? { lock: deps.lock } : {}),
    };
    const k = this.k;
    const secrets = deps.secrets;
    const hooks: KindHooks<AppRelease, AppScope> = {
      kind: APP_RELEASE_KIND,
      writesAllowed: (obj) => !obj.spec.suspend,
      newScope: (base) => this.newScope(base),
      work: {
        reconcile: async (s) => {
          await preloadSecrets(secrets, s); // the redactor of this fold knows the values
          return reconcileInvocations(k, s);
        },
        inFlight: (s) => s.inFlight.length,
      },
      phases: [
        async (s) => checkHostInput(s.obj.spec), // before anything reaches a host
        async (s) => checkAnalysisSpec(s.obj.spec.analysis), // before a batch it could not gate
        (s) => reconcileTargets(k, s),
        (s) => reconcileConflicts(k, s),
        (s) => reconcileSecrets(s, secrets),
        (s) => advanceRollout(k, s).then(() => undefined),
      ],
      reconcileDelete: (s) => reconcileDelete(k, s),
      deriveStatus: (s, err) => deriveAppReleaseStatus(s, err, this.opts.maxInstanceRows),
      requeueAfterMs: (s) => this.requeueAfter(s),
      recheckedStalledReasons: [
        ConflictingReleaseReason,
        SecretNotFoundReason,
        SecretForbiddenReason,
        InvalidSecretValueReason,
      ],
      forget: (uid, gone) => {
        k.claims.remove(uid);
        k.appDirClaims.remove(uid);
        k.adoptionChecked.delete(uid);
        if (gone) k.lock?.release(uid);
        if (gone) forgetSecretValues(uid);
      },
    };
    const kit: KitDeps<AppRelease> = {
      objects: deps.objects,
      kube: deps.kube,
      events: deps.events,
      metrics: deps.appMetrics.forDriver(deps.metrics),
      ...(deps.now ? { now: deps.now } : {}),
    };
    this.driver = new ReconcileDriver(hooks, kit, this.opts);
  }

  /** Reconciles one AppRelease by key (see the driver). */
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult> {
    return this.driver.reconcile(req, ctx);
  }

  private newScope(base: BaseScope<AppRelease>): AppScope {
    const { obj, view } = base;
    const { spec } = obj;
    const status = obj.status ?? {};
    const ecs = this.deps.cloud.ecs(spec.regionId, view);
    const revision = revisionOf(spec);
    const owner = `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
    const scope: AppScope = {
      ...base,
      ecs,
      fleet: this.deps.cloud.fleet(spec.regionId),
      oos: () => this.deps.cloud.oos(spec.regionId, view),
      revision,
      tracker: new InvocationTracker({
        ecs,
        metricLabel: APP_RELEASE_METRIC_LABEL,
        events: this.deps.events,
        metrics: this.deps.metrics,
        outputTail: 1024,
        redact: (text) => redact(obj, text),
        adoptionChecked: this.k.adoptionChecked,
        command: (_batch, action) => commandOf(scope, action as WrapperAction, owner),
      }),
      targets: [],
      resolved: false,
      tags: new Map(),
      inFlight: (status.executions ?? []).map(fromTracked),
      ledger: new FailureLedger(status.retry),
      sequence: status.executionSequence ?? 0,
      history: [...(status.history ?? [])],
      results: new Map(),
      rolledBack: new Set(),
    };
    if (status.phase) scope.phase = status.phase;
    if (status.stableRevision) scope.stable = status.stableRevision;
    if (status.stableVersion) scope.stableVersion = status.stableVersion;
    if (status.stableRelease) scope.stableRelease = structuredClone(status.stableRelease);
    if (status.rollout) scope.rollout = structuredClone(status.rollout);
    if (status.secretParameter) scope.secretParameter = { ...status.secretParameter };
    if (status.analysis) scope.analysis = structuredClone(status.analysis);
    const traffic = trafficScopeOf({
      spec: spec.trafficControl,
      status: status.trafficControl,
      regionId: spec.regionId,
      lb: this.deps.cloud.loadBalancer?.bind(this.deps.cloud),
      drains: (action) => action === 'deploy' || action === 'rollback',
    });
    if (traffic) scope.traffic = traffic;
    return scope;
  }

  /** The lowest of: batch poll delay, a timed pause's end, a lock wait, and the drift interval (ms). */
  private requeueAfter(s: AppScope): number {
    const candidates = [intervalMs(s.obj.spec.interval)];
    if (s.inFlight.length > 0) {
      candidates.push(
        pollDelayMs(
          s.inFlight.map((w) => w.startTime),
          s.now,
          this.opts.pollMinMs,
          this.opts.pollMaxMs,
        ),
      );
    }
    if (s.wakeAtMs !== undefined) candidates.push(Math.max(1_000, s.wakeAtMs - s.now.getTime()));
    // A lock wait is woken when the hold ends (lock.ts); this is the fallback.
    if (s.waiting) candidates.push(this.opts.pollMaxMs);
    if (s.phase === 'RollingBack') candidates.push(this.opts.pollMinMs);
    const retryAt = s.ledger.retryAt;
    if (retryAt && s.writesAllowed && s.rollout?.enrol)
      candidates.push(Math.max(this.opts.pollMinMs, Date.parse(retryAt) - s.now.getTime()));
    return Math.min(...candidates);
  }
}

/** A rollback's command input: to `rollout.rollback.to`, carrying the stable release when known. */
function rollbackInput(s: AppScope, owner: string): WrapperInput {
  const revision = s.rollout?.rollback?.to ?? s.stable ?? 'none';
  if (revision === 'none' || s.stableRelease?.revision !== revision)
    return { action: 'rollback', revision, spec: s.obj.spec, owner };
  const m = stableMaterial(s.obj, s.stableRelease);
  return { action: 'rollback', revision, spec: m.spec, owner, fetch: m.fetchable };
}

/**
 * The Cloud Assistant command of one batch: a deploy installs the spec's revision; a rollback the
 * revision `status.rollout.rollback.to` (the stable one when it began), carrying the stable release
 * when it is known and can be downloaded again (so a host without it on disk gets it deployed).
 */
export function commandOf(s: AppScope, action: WrapperAction, owner: string): CommandSpec {
  const base: WrapperInput =
    action === 'rollback'
      ? rollbackInput(s, owner)
      : { action, revision: s.revision, spec: s.obj.spec, owner };
  // Secret-sourced env values ride in the one OOS encrypted parameter, never in the command text;
  // every action carries the reference (stop and start hooks run in rollbacks and uninstalls too)
  // once OOS confirmed the parameter holds the current spec's Secrets.
  const p = s.secretParameter;
  const input: WrapperInput =
    p?.secretVersions !== undefined && secretEnvVars(s.obj.spec).length > 0
      ? { ...base, secretParameter: p.name }
      : base;
  const rev = input.revision;
  checkHostInput(input.spec); // a stable release recorded before the appDir rules included
  return {
    type: 'RunShellScript',
    commandContent: renderCommand(input),
    timeoutSeconds: commandTimeoutSeconds(input.spec, input.fetch ? 'deploy' : action),
    username: input.spec.install?.user ?? 'root',
    workingDir: '/',
    parameters: commandParameters(action, rev),
    terminationMode: 'ProcessTree',
  };
}
