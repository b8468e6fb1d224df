/**
 * The controllers' side of the analysis gate (issue 22), shared by AppRelease (after every batch)
 * and PatchPolicy (between install executions): starts or resumes the persisted `status.analysis`
 * of one gated batch or execution, takes the measurements that are due through the pure engine
 * (./analysis/gate.ts `startAnalysis` / `stepAnalysis`) and counts finished runs in
 * `ecsops_analysis_runs_total{kind,result}`.
 *
 * Fail safe on doubt (DESIGN §8.6): Prometheus unreachable, erroring or answering nothing usable
 * is an inconclusive measurement — the gate waits, and fails once inconclusiveLimit is exceeded; it
 * never passes. A connection that cannot be built (the bearer-token or CA Secret missing,
 * forbidden or invalid) is Stalled with the Secret's reason (re-checked on a slow period): the
 * rollout holds until the Secret is fixed.
 */
import type { AnalysisSpec, AnalysisStatus } from '../../api/analysis.js';
import { InvalidSpecReason, SecretForbiddenReason } from '../../api/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import type { ControllerMetrics, Resource } from './deps.js';
import type { SecretReader } from './secrets.js';
import type { ResolvedTarget } from './targets.js';
import {
  analysisSpecProblem,
  failureMessage,
  progressMessage,
  startAnalysis,
  stepAnalysis,
  type AnalysisContext,
  type AnalysisStep,
  type QueryFn,
} from './analysis/gate.js';
import { prometheusQueryFn, resolvePrometheusConnection } from './analysis/prometheus.js';

/**
 * Builds the query function of an object's `spec.analysis.prometheus` (connection, token, CA).
 * {@link runGate} calls it only when a measurement is due.
 */
export type QueryFnFactory = (obj: Resource, spec: AnalysisSpec) => Promise<QueryFn>;

/**
 * The production {@link QueryFnFactory}: the Prometheus HTTP client (./analysis/prometheus.ts) with
 * the token and CA read by `reader` (the shared Secret reader; absent: an object whose analysis
 * references a Secret is Stalled `SecretForbidden`).
 */
export function prometheusQueryFns(reader: SecretReader | undefined): QueryFnFactory {
  return async (obj, spec) => {
    const ns = obj.metadata?.namespace ?? 'default';
    const refs = spec.prometheus.bearerTokenSecretRef ?? spec.prometheus.caSecretRef;
    if (refs && !reader)
      throw new StalledError(
        SecretForbiddenReason,
        `analysis.prometheus references Secret ${ns}/${refs.name} but this controller reads no Secrets (no Secret reader configured)`,
      );
    const conn = reader
      ? await resolvePrometheusConnection(reader, ns, spec)
      : { url: spec.prometheus.url, timeoutMs: (spec.prometheus.timeoutSeconds ?? 10) * 1000 };
    return prometheusQueryFn(conn);
  };
}

/** What a kind needs to run gates. */
export interface AnalysisRuntime {
  queryFn: QueryFnFactory;
  /** `ecsops_analysis_runs_total` (optional for fakes). */
  metrics?: Pick<ControllerMetrics, 'analysisFinished'>;
}

/** The result of {@link runGate}. */
export interface GateRun extends AnalysisStep {
  /** True when this call ended the run (Successful or Failed): count and announce it once. */
  ended: boolean;
  /**
   * One line for conditions and Events: when Failed, why (metric, query, value, condition); else
   * the progress (./analysis/gate.ts `progressMessage`).
   */
  message: string;
  /** While Pending: when to reconcile again, ms since the epoch (the next measurement, ≥ 1 s away). */
  wakeAtMs?: number;
}

/**
 * Phase (both kinds, before anything starts): what admission cannot judge of `spec.analysis` (the
 * CEL of the conditions, placeholders of objects stored before the rule), so no batch starts that
 * its gate could not measure.
 * @throws StalledError `InvalidSpec` naming the metric.
 */
export function checkAnalysisSpec(spec: AnalysisSpec | undefined): void {
  const problem = spec ? analysisSpecProblem(spec) : undefined;
  if (problem) throw new StalledError(InvalidSpecReason, `spec.${problem}`);
}

/**
 * The verdict of `status` when it is the finished analysis of `runId` (Successful or Failed);
 * undefined while it runs, or when it belongs to another run or is absent.
 */
export function gateDone(
  status: AnalysisStatus | undefined,
  runId: string,
): 'Successful' | 'Failed' | undefined {
  if (status?.runId !== runId) return undefined;
  return status.phase === 'Successful' || status.phase === 'Failed' ? status.phase : undefined;
}

/**
 * The query placeholders of a gated batch or execution: its instance IDs (sorted), their private
 * IPs and (distinct, sorted) zones as target resolution read them, and its index.
 */
export function gateContext(
  targets: readonly ResolvedTarget[],
  ids: readonly string[],
  batch: number,
): AnalysisContext {
  const byId = new Map(targets.map((t) => [t.instanceId, t.instance]));
  const sorted = [...ids].sort();
  return {
    instanceIds: sorted,
    ips: sorted.flatMap((id) => byId.get(id)?.privateIpAddress ?? []),
    zones: [...new Set(sorted.flatMap((id) => byId.get(id)?.zoneId ?? []))].sort(),
    batch,
  };
}

/** One gate evaluation: what {@link runGate} measures. */
export interface GateRequest {
  /** `ecsops_analysis_runs_total{kind}`: AppRelease or PatchPolicy. */
  kind: string;
  obj: Resource;
  spec: AnalysisSpec;
  /** The persisted `status.analysis` (any run), if any. */
  prev: AnalysisStatus | undefined;
  /** The batch or execution gated now. */
  runId: string;
  now: Date;
  /** The gated batch's instance IDs, IPs, zones and index (query placeholders). */
  context: AnalysisContext;
}

/**
 * runGate starts the analysis of `req.runId` (when `req.prev` belongs to another run or is absent)
 * or resumes `req.prev`, and takes the measurements that are due at `req.now`. The query function
 * (Secret reads) is built only when a measurement is due: not while baking or between intervals.
 * @returns the new status to persist (in the same status write as what the verdict causes), the
 *   verdict, a one-line message (the failure when Failed, else the progress), when to wake while
 *   Pending, and whether this call ended the run (counted in `ecsops_analysis_runs_total` then).
 * @throws StalledError / TransientError from building the connection (Secret reads); never for
 *   Prometheus problems (they are inconclusive measurements).
 */
export async function runGate(rt: AnalysisRuntime, req: GateRequest): Promise<GateRun> {
  const { spec, prev, runId, now } = req;
  const status = prev?.runId === runId ? prev : startAnalysis(spec, runId, now.getTime());
  // A finished status comes back as is (nothing built, nothing counted again).
  const step = await stepAnalysis(spec, status, now.getTime(), () => rt.queryFn(req.obj, spec), req.context);
  if (step.result) rt.metrics?.analysisFinished?.(req.kind, step.result);
  const message =
    step.verdict !== 'Failed'
      ? progressMessage(step.status)
      : step.failure
        ? failureMessage(step.failure)
        : (step.status.message ?? 'analysis failed');
  const run: GateRun = { ...step, ended: step.result !== undefined, message };
  if (step.verdict === 'Pending')
    run.wakeAtMs = now.getTime() + Math.max(1_000, step.requeueAfterMs ?? 1_000);
  return run;
}
