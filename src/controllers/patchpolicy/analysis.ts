/**
 * The analysis gate of PatchPolicy installs (issue 22). An install execution of
 * ACS-ECS-BulkyApplyPatchBaseline covers up to 50 instances with `rateControl` inside, so a gate can
 * act only between executions: with `spec.analysis` set, a window occurrence's executions run one
 * at a time (`install.parallelBatches` is not used), and before the next one starts the gate
 * measures the spec's Prometheus queries over the previous execution's instances
 * (src/controllers/shared/analysis/gate.ts; bake time, then `count` measurements per metric).
 *
 * - Pending: the next execution waits (requeued when the next measurement is due).
 * - Successful: the next execution starts (`AnalysisSucceeded` Event).
 * - Failed: no further execution starts in this window occurrence (`AnalysisFailed` Warning Event
 *   and condition reason, with the metric, query, value and condition); the next occurrence starts
 *   afresh with the instances left.
 *
 * `status.analysis` (runId `<window opensAt>/execution-<n>`, n = executions started in the
 * occurrence) is written in the same status patch as what its verdict causes, so a restarted
 * controller resumes it. The previous execution's instances are recorded in
 * `status.lastInstall.lastExecutionInstanceIds` when it starts.
 */
import type { AnalysisFailure } from '../../api/analysis.js';
import { PATCH_POLICY_KIND } from '../../api/patchpolicy.js';
import { AnalysisAction, AnalysisFailedEvent, AnalysisSucceededEvent } from '../../api/events.js';
import { gateContext, gateDone, runGate, type GateRun } from '../shared/analysis-run.js';
import type { PatchContext, PatchScope } from './phases.js';

/** The runId of the gate after the `n`-th install execution of the occurrence opening at `opensAt`. */
export function installRunId(opensAt: string, n: number): string {
  return `${opensAt}/execution-${n}`;
}

/** What the gate lets an install do now. */
export type InstallGate = 'go' | 'wait' | 'stopped';

/**
 * The failure that stopped the installs of the occurrence `lastInstall` belongs to, if any (its
 * status.analysis failed).
 */
export function installStopped(scope: PatchScope): AnalysisFailure | undefined {
  const a = scope.analysis;
  const opensAt = scope.lastInstall?.windowOpensAt;
  if (!a || !opensAt || a.phase !== 'Failed' || !a.runId.startsWith(`${opensAt}/`)) return undefined;
  return a.failure ?? { metric: '?', query: '', value: '', condition: a.message ?? 'analysis failed' };
}

/**
 * reconcileInstallGate decides whether the next install execution of the open occurrence
 * (`opensAt`, RFC 3339) may start: always without spec.analysis; with it, only when no install
 * runs, and — after the occurrence's first execution — once the analysis of the previous one
 * passed. Sets `scope.gateWait` (condition, requeue) while it waits.
 * @throws StalledError / TransientError from reading the analysis Secrets (see analysis-run.ts).
 */
export async function reconcileInstallGate(
  k: PatchContext,
  scope: PatchScope,
  opensAt: string,
): Promise<InstallGate> {
  const spec = scope.obj.spec.analysis;
  if (!spec) return 'go';
  if (scope.inFlight.some((w) => w.action === 'install')) return 'wait'; // one at a time
  const op = scope.lastInstall;
  const n = op?.windowOpensAt === opensAt ? (op.executionCount ?? 0) : 0;
  if (n === 0) return 'go';
  if (installStopped(scope)) return 'stopped';
  const runId = installRunId(opensAt, n);
  if (gateDone(scope.analysis, runId) === 'Successful') return 'go';
  const run = await runGate(k.analysis, {
    kind: PATCH_POLICY_KIND,
    obj: scope.obj,
    spec,
    prev: scope.analysis,
    runId,
    now: scope.now,
    context: gateContext(scope.targets, op?.lastExecutionInstanceIds ?? [], n),
  });
  scope.analysis = run.status;
  return settleInstallGate(k, scope, opensAt, n, run);
}

/** Acts on one step of the gate after execution `n`: an Event when it ended, the wait while pending. */
function settleInstallGate(
  k: PatchContext,
  scope: PatchScope,
  opensAt: string,
  n: number,
  run: GateRun,
): InstallGate {
  if (run.verdict === 'Successful') {
    const note = `Analysis after install execution ${n} passed: ${run.message}`;
    if (run.ended) void k.events.event(scope.obj, 'Normal', AnalysisSucceededEvent, AnalysisAction, note);
    return 'go';
  }
  if (run.verdict === 'Failed') {
    const note = `Analysis after install execution ${n} failed, no further install execution starts in the window opened at ${opensAt}: ${run.message}`;
    if (run.ended) void k.events.event(scope.obj, 'Warning', AnalysisFailedEvent, AnalysisAction, note);
    return 'stopped';
  }
  scope.gateWait = {
    inconclusive: run.status.phase === 'Inconclusive',
    message: `the next install execution waits for the analysis after execution ${n}: ${run.message}`,
    wakeAtMs: run.wakeAtMs ?? scope.now.getTime() + 1_000,
  };
  return 'wait';
}
