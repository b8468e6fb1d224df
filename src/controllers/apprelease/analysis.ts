/**
 * The analysis gate of a rollout (issue 22; see rollout.ts for its place): with `spec.analysis`
 * set, after every batch finished (its health checks passed) — the canary batch included, while
 * its pause holds — the gate measures the spec's Prometheus queries (bake time, then `count`
 * measurements per metric, one per `interval`; src/controllers/shared/analysis/gate.ts) before
 * anything else happens:
 *
 * - **Pending** (baking, measuring, or inconclusive within `inconclusiveLimit`): the rollout holds —
 *   no next batch, no completion — and requeues when the next measurement is due. The progress
 *   deadline does not run meanwhile (the analysis is bounded by its own limits).
 * - **Successful**: the rollout goes on (`AnalysisSucceeded` Event; counts as progress).
 * - **Failed** (a failure condition past failureLimit, or inconclusive past inconclusiveLimit): the
 *   rollout fails with the metric, its query, the measured value and the condition
 *   (`AnalysisFailed` Warning Event and condition reason); with `rollback.automatic` the rollback
 *   step that follows starts in the same reconcile.
 *
 * `status.analysis` (runId `<revision>/<rollout sequence>/batch-<index>`) is written in the same
 * status patch as what its verdict causes, so a restarted controller resumes the run where it was.
 */
import { APP_RELEASE_KIND, type BatchStatus, type RolloutStatus } from '../../api/apprelease.js';
import { AnalysisAction, AnalysisFailedEvent, AnalysisSucceededEvent } from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import type { AnalysisContext } from '../shared/analysis/gate.js';
import { gateContext, gateDone, runGate, type GateRun } from '../shared/analysis-run.js';
import { failRollout } from './lifecycle.js';
import { canaryPause } from './pauses.js';
import type { StepOutcome } from './progress.js';
import { emit, type AppContext, type AppScope } from './scope.js';

/** `status.rollout.failure.step` of a rollout an analysis failed (condition reason AnalysisFailed). */
export const ANALYSIS_STEP = 'analysis';

/** The runId of the analysis after batch `index` of rollout `r`. */
export function gateRunId(r: Pick<RolloutStatus, 'revision' | 'sequence'>, index: number): string {
  return `${r.revision}/${r.sequence}/batch-${index}`;
}

/** The batch a gate runs after: the newest one, once it finished; undefined while none did. */
export function gatedBatch(r: RolloutStatus): BatchStatus | undefined {
  const b = r.batches.at(-1);
  return b && b.phase !== 'Running' ? b : undefined;
}

/** True while the analysis of the rollout's newest finished batch runs (not yet Successful/Failed). */
export function analysisPending(s: AppScope): boolean {
  const r = s.rollout;
  const b = r && s.obj.spec.analysis && !r.enrol ? gatedBatch(r) : undefined;
  return r !== undefined && b !== undefined && !gateDone(s.analysis, gateRunId(r, b.index));
}

/**
 * The query placeholders of batch `b`: its instances (recorded on the batch row; an old row
 * without them: the instances tagged with the rollout's revision), their private IPs and zones.
 */
export function batchContext(s: AppScope, r: RolloutStatus, b: BatchStatus): AnalysisContext {
  const tagged = () =>
    s.targets.filter((t) => s.tags.get(t.instanceId) === r.revision).map((t) => t.instanceId);
  return gateContext(s.targets, b.instanceIds ?? tagged(), b.index);
}

/** Acts on a finished analysis of batch `b`: progress and an Event, or the rollout fails. */
function settleGate(k: AppContext, s: AppScope, r: RolloutStatus, b: BatchStatus, run: GateRun): void {
  if (run.verdict === 'Successful') {
    r.lastProgressTime = toMetaTime(s.now);
    const note = `Analysis after batch ${b.index} of revision ${r.revision} passed: ${run.message}`;
    if (run.ended) emit(k, s, 'Normal', AnalysisSucceededEvent, AnalysisAction, note);
    return;
  }
  const message = `analysis after batch ${b.index} failed: ${run.message}`;
  const note = `Rollout of revision ${r.revision}: ${message}`;
  emit(k, s, 'Warning', AnalysisFailedEvent, AnalysisAction, note);
  failRollout(k, s, { message, step: ANALYSIS_STEP });
}

/**
 * analysisGate: the step (see the module comment). Returns `stop` while the analysis is pending,
 * else `next` (after a failure the rollback step runs next).
 */
export async function analysisGate(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const spec = s.obj.spec.analysis;
  const r = s.rollout;
  if (!spec || !r || r.enrol || r.failure || s.phase === 'RollingBack') return 'next';
  const b = gatedBatch(r);
  if (!b) return 'next';
  const runId = gateRunId(r, b.index);
  if (gateDone(s.analysis, runId) === 'Successful') return 'next';
  const { obj, now } = s;
  const context = batchContext(s, r, b);
  const run = await runGate(k.analysis, {
    kind: APP_RELEASE_KIND,
    obj,
    spec,
    prev: s.analysis,
    runId,
    now,
    context,
  });
  s.analysis = run.status;
  if (run.verdict !== 'Pending') {
    settleGate(k, s, r, b, run);
    return 'next';
  }
  s.phase = 'Progressing';
  const inconclusive = run.status.phase === 'Inconclusive';
  s.gateWait = { batch: b.index, inconclusive, message: `batch ${b.index} ${run.message}` };
  // During the canary pause: it begins (and a promote is taken) as without analysis; the next batch
  // waits for both.
  if (b.index === 0) canaryPause(k, s);
  s.wakeAtMs = Math.min(s.wakeAtMs ?? Infinity, run.wakeAtMs ?? now.getTime() + 1_000);
  return 'stop';
}
