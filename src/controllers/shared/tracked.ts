/**
 * Folding tracked work into a reconcile, shared by every kind that starts batches (DESIGN §3; the
 * poll itself is `WorkKit.reconcile`): re-check instances whose item failed (one that
 * stopped or lost its Cloud Assistant agent meanwhile is Unreachable, not Failed), and write the
 * compact work fields of a status (`executions`, `executionSequence`, `retry`).
 */
import type { CommonStatus } from './driver.js';
import type { EcsApi } from '../../cloud/types.js';
import type { FailureLedger } from './retry.js';
import { recheckReachability, type ResolvedTarget } from './targets.js';
import { toTracked, type WorkItem } from './work.js';
import type { RetryStatus, TrackedExecution } from '../../api/common.js';

/**
 * Re-checks `failed` instances with ECS (DescribeInstances + DescribeCloudAssistantStatus): those
 * now unreachable are cleared from `ledger` and marked unreachable in the returned targets.
 * @returns the updated targets and the IDs found unreachable.
 * @throws TransientError / StalledError mapped from cloud failures.
 */
export async function reclassifyUnreachable(
  ecs: EcsApi,
  ledger: FailureLedger,
  targets: readonly ResolvedTarget[],
  failed: readonly string[],
): Promise<{ targets: ResolvedTarget[]; gone: string[] }> {
  const now = await recheckReachability(ecs, failed);
  const gone = new Map<string, string>();
  for (const id of failed) {
    const r = now.get(id);
    if (!r || r.reachable) continue;
    ledger.clear(id);
    gone.set(id, r.unreachableReason ?? 'unreachable');
  }
  return {
    targets: targets.map((t) =>
      gone.has(t.instanceId) ? { ...t, reachable: false, unreachableReason: gone.get(t.instanceId) } : t,
    ),
    gone: [...gone.keys()],
  };
}

/** The status fields of a kind that runs work. */
export interface WorkStatus extends CommonStatus {
  executions?: TrackedExecution[];
  executionSequence?: number;
  retry?: RetryStatus;
}

/**
 * Writes `executions` (compact, absent when nothing runs; `lockKeys` only on work whose action
 * takes the lock, per `locks`), `executionSequence` (when > 0) and `retry` (absent when nothing
 * failed) onto `status`: always written, so an execution leaves `status.executions` only in the
 * write that records its outcome.
 */
export function writeWorkStatus(
  status: WorkStatus,
  inFlight: readonly WorkItem[],
  sequence: number,
  ledger: FailureLedger,
  locks: (action: string) => boolean = () => true,
): void {
  if (inFlight.length > 0) status.executions = inFlight.map((w) => toTracked(w, locks(w.action)));
  else delete status.executions;
  if (sequence > 0) status.executionSequence = sequence;
  const retry = ledger.toStatus();
  if (retry) status.retry = retry;
  else delete status.retry;
}
