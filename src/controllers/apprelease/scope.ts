/**
 * What every AppRelease step shares (DESIGN §3): the per-process {@link AppContext}, the per-reconcile
 * {@link AppScope} the steps record facts on, and small helpers (revision tag key, redaction,
 * Events, count arithmetic). Cloud side: ECS DescribeInstances / DescribeCloudAssistantStatus
 * (targets, revision tags), RunCommand / DescribeInvocations / StopInvocation through the kit's
 * {@link InvocationTracker}, TagResources / UntagResources (`ecsops.io/app.<application>`).
 *
 * Where a rollout stands lives in `status.rollout` (revision, batches with their invoke IDs,
 * failures, pause, rollback targets) and in the cloud (which instance carries which revision tag),
 * so a restarted controller resumes it; every RunCommand has a ClientToken derived from (UID,
 * revision, rollout, batch or rollback attempt, sorted instances), so a batch is never started twice.
 */
import type { TrafficScope } from '../shared/traffic.js';
import {
  REVISION_TAG_PREFIX,
  type AppRelease,
  type HistoryEntry,
  type ReleasePhase,
  type RolloutStatus,
  type SecretParameterStatus,
  type StableRelease,
} from '../../api/apprelease.js';
import type { RegionFleet } from '../../cloud/fleet.js';
import type { AnalysisStatus } from '../../api/analysis.js';
import type { EcsApi, OosApi } from '../../cloud/types.js';
import parseDuration from 'parse-duration';
import type { ClaimRegistry } from '../shared/claims.js';
import type { EventSink } from '../shared/deps.js';
import type { AnalysisRuntime } from '../shared/analysis-run.js';
import type { BaseScope } from '../shared/driver.js';
import type { InvocationTracker } from '../shared/invocation-tracker.js';
import type { InstanceLock, LockHolder } from '../shared/lock.js';
import type { BackoffOptions, FailureLedger } from '../shared/retry.js';
import type { WorkKit } from '../shared/start.js';
import type { NodeScreen } from '../shared/kubernetes-nodes.js';
import type { ResolvedTarget } from '../shared/targets.js';
import type { WorkItem } from '../shared/work.js';
import type { AppReleaseMetrics } from './metrics.js';
import { knownSecretValues, redactValues, type ResolvedSecrets } from './secrets.js';
import { literalEnv } from './wrapper.js';

/** Per-process state and clients the steps share. */
export interface AppContext {
  claims: ClaimRegistry;
  /** appDir claims (subjects nest: see safety.ts), for the overlapping-appDir rule. */
  appDirClaims: ClaimRegistry;
  events: EventSink;
  metrics: AppReleaseMetrics;
  lock?: InstanceLock;
  /** The kit's start path and tracked-work step (holds `lock`). */
  work: WorkKit;
  /** Retry backoff of instances that failed to enrol, of transient downloads and of rollbacks. */
  backoff: BackoffOptions;
  /** Owners whose invocation adoption listing found nothing in this process (see InvocationTracker). */
  adoptionChecked: Set<string>;
  /** Runs spec.analysis gates (Prometheus queries, `ecsops_analysis_runs_total`). */
  analysis: AnalysisRuntime;
}

/** What one instance's finished invocation reported, this reconcile. */
export interface InstanceResult {
  instanceId: string;
  ok: boolean;
  action: string;
  invokeId: string;
  step?: string;
  exitCode?: number;
  /** Sanitized, env values redacted, ≤ 1 KiB. */
  output?: string;
  message?: string;
}

/** Facts gathered during one AppRelease reconcile. */
export interface AppScope extends BaseScope<AppRelease> {
  ecs: EcsApi;
  /** spec.trafficControl (deploy and rollback batches drain first), or backends left to restore. */
  traffic?: TrafficScope;
  /**
   * The region's fleet view: targets (and with them the revision tags) are read through its shared
   * instance records and tag listings; the tags this reconcile writes are recorded in it.
   */
  fleet: RegionFleet;
  /** OOS client of the region (Parameter Store: the secret parameter), created on first use. */
  oos: () => OosApi;
  tracker: InvocationTracker;
  /** Revision of the current spec. */
  revision: string;
  targets: ResolvedTarget[];
  /** Kubernetes nodes among the resolved targets (excluded unless spec.allowKubernetesNodes); set by reconcileTargets. */
  nodeScreen?: NodeScreen;
  /** Whether targets were resolved this reconcile (status keeps the old summary otherwise). */
  resolved: boolean;
  /** The revision tag of each target. */
  tags: Map<string, string | undefined>;
  inFlight: WorkItem[];
  ledger: FailureLedger;
  sequence: number;
  phase?: ReleasePhase;
  stable?: string;
  stableVersion?: string;
  /** What the stable revision was built from (redeployable; no secrets). */
  stableRelease?: StableRelease;
  /** The OOS encrypted parameter of Secret-sourced env values (status.secretParameter). */
  secretParameter?: SecretParameterStatus;
  /** The Secrets as this reconcile read them before the fold (secret-delivery.ts), if that read succeeded. */
  readSecrets?: ResolvedSecrets;
  rollout?: RolloutStatus;
  history: HistoryEntry[];
  results: Map<string, InstanceResult>;
  /** Instances confirmed back on the stable revision by the current rollout's rollback. */
  rolledBack: Set<string>;
  waiting?: { holder: LockHolder; count: number };
  /** Why the rollout holds (Paused condition). */
  held?: { reason: string; message: string };
  /** When a timed wait (pause, pause between batches, a retry's backoff) ends, ms since the epoch. */
  wakeAtMs?: number;
  /** The analysis of the newest finished batch (status.analysis; analysis.ts). */
  analysis?: AnalysisStatus;
  /** Set while the next batch waits for that analysis (condition message; AnalysisInconclusive). */
  gateWait?: { batch: number; inconclusive: boolean; message: string };
}

/** The ECS tag key recording an application's revision on an instance. */
export function revisionTagKey(application: string): string {
  return `${REVISION_TAG_PREFIX}${application}`;
}

/**
 * Replaces every Secret-sourced env value last read for the object and every inline env value of
 * the spec (4+ characters) in `text` with `[REDACTED]`, then sanitizes. Redact whole texts, then cut.
 */
export function redact(obj: AppRelease, text: string): string {
  return redactValues(
    text,
    knownSecretValues(obj.metadata.uid),
    literalEnv(obj.spec).map(([, v]) => v),
  );
}

/** Records an Event on the AppRelease (redacted, ≤ 1 KiB). */
export function emit(
  k: AppContext,
  s: AppScope,
  type: 'Normal' | 'Warning',
  reason: string,
  action: string,
  note: string,
): void {
  void k.events.event(s.obj, type, reason, action, redact(s.obj, note).slice(0, 1024));
}

/** Instances per rollout batch: `strategy.batchSize` (count or percent, rounded up; default 25 %), ≥ 1. */
export function batchSizeOf(spec: AppRelease['spec'], targeted: number): number {
  return Math.max(1, resolveCount(spec.strategy?.batchSize, targeted, Math.ceil(0.25 * targeted), 'up'));
}

/** Count or percentage of `total` (percent rounded up for sizes, down for error budgets). */
export function resolveCount(
  v: number | string | undefined,
  total: number,
  dflt: number,
  round: 'up' | 'down',
): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return v;
  const pct = Number(v.replace('%', ''));
  const n = (pct / 100) * total;
  return round === 'up' ? Math.ceil(n) : Math.floor(n);
}

/** A Go duration string in milliseconds (0 when absent or invalid). */
export function durationMs(v: string | undefined): number {
  const ms = v ? parseDuration(v) : 0;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** The step a ledger message names (`… failed at step <name> …`). */
export function stepOfMessage(message: string | undefined): string | undefined {
  return /failed at step (\S+)/.exec(message ?? '')?.[1];
}

/** The action a ledger message names (`<action> failed at step …`). */
export function actionOfMessage(message: string | undefined): string | undefined {
  return /^(\w+) failed at step/.exec(message ?? '')?.[1];
}

/** Steps after which nothing changed on the host (the release was refused before the stop hook). */
export const HARMLESS_STEPS: readonly string[] = ['prepare', 'download', 'verify', 'unpack'];

/** Instance IDs of the work in flight. */
export function inFlightIds(s: AppScope): string[] {
  return s.inFlight.flatMap((w) => w.instanceIds);
}
