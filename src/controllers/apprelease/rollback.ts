/**
 * The rollback step (see rollout.ts for its place): a failed rollout with `rollback.automatic`
 * moves every instance it touched back to the stable revision, and claims `RolledBack` only once
 * the cloud confirmed each one.
 *
 * - **Targets, recorded first**: instances tagged with the failed revision, plus those whose deploy
 *   failed after the download (their stop hook ran). They go to `status.rollout.rollback.remaining`
 *   before the first RunCommand, and leave it only when a rollback invocation reported the stable
 *   revision running (its `ecsops-result` line) and the revision tag was written. Instances no
 *   longer targeted (released, untagged) leave it too.
 * - **Resumable**: a failed or unanswered RunCommand leaves the list as it is; unreachable hosts stay
 *   targets until they are back; hosts whose rollback failed are retried after a backoff.
 * - **Redeployable**: the command carries the stable release (stable.ts), so a host that never had
 *   it on disk (enrolled mid-rollout) gets it deployed instead of being left with nothing running.
 */
import type { RolloutStatus } from '../../api/apprelease.js';
import { RollbackAction, RollbackStartedEvent, RolledBackEvent } from '../../api/events.js';
import { listIds } from '../shared/targets.js';
import { finishRollout, startWork } from './lifecycle.js';
import type { StepOutcome } from './progress.js';
import {
  actionOfMessage,
  emit,
  HARMLESS_STEPS,
  stepOfMessage,
  type AppContext,
  type AppScope,
} from './scope.js';

type Rollback = NonNullable<RolloutStatus['rollback']>;

/** The rollback's targets: tagged with the failed revision, or failed past the download (sorted). */
export function rollbackTargets(s: AppScope, r: RolloutStatus): string[] {
  const out = new Set(
    s.targets.filter((t) => s.tags.get(t.instanceId) === r.revision).map((t) => t.instanceId),
  );
  for (const id of s.ledger.ids()) {
    const rec = s.ledger.get(id);
    if (actionOfMessage(rec?.message) !== 'deploy') continue;
    const step = s.results.get(id)?.step ?? stepOfMessage(rec?.message);
    if (!step || !HARMLESS_STEPS.includes(step)) out.add(id);
  }
  return [...out].sort();
}

function beginRollback(s: AppScope, r: RolloutStatus): Rollback {
  const remaining = rollbackTargets(s, r);
  return { to: s.stable ?? 'none', remaining, total: remaining.length, attempt: 0, invokeIds: [] };
}

function finishRollback(k: AppContext, s: AppScope, rb: Rollback): void {
  const why = s.rollout?.failure?.message ?? 'rollout failed';
  s.phase = 'RolledBack';
  finishRollout(k, s, 'RolledBack', why);
  const to = rb.to === 'none' ? 'nothing' : `revision ${rb.to}`;
  emit(
    k,
    s,
    'Warning',
    RolledBackEvent,
    RollbackAction,
    `Rolled back ${rb.total} instance(s) to ${to} after: ${why}`,
  );
}

/** One rollback RunCommand round on `ids` (all or nothing: it waits for the lock). */
async function sendRollback(k: AppContext, s: AppScope, r: RolloutStatus, ids: string[]): Promise<void> {
  const rb = r.rollback as Rollback;
  const round = rb.attempt;
  const to = rb.to === 'none' ? 'nothing (no stable revision)' : `revision ${rb.to}`;
  const tokenScope = `${r.revision}/${r.sequence}/rollback`;
  const req = { action: 'rollback' as const, ids, round, tokenScope, describe: `rollback to ${rb.to}` };
  await startWork(k, s, req, {
    allOrNothing: true,
    onIntent: () => {
      rb.attempt = round + 1;
      delete rb.retryAt;
      const note = `Rolling ${ids.length} instance(s) back to ${to}: ${listIds(ids)}`;
      emit(k, s, 'Warning', RollbackStartedEvent, RollbackAction, note);
    },
  });
}

/** RollingBack: record the targets, move the reachable remaining ones back, finish when none remain. */
export async function rollBack(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const r = s.rollout;
  if (s.phase !== 'RollingBack' || !r) return 'next';
  if (s.inFlight.length > 0) return 'stop';
  const rb = (r.rollback ??= beginRollback(s, r));
  const targeted = new Set(s.targets.map((t) => t.instanceId));
  rb.remaining = rb.remaining.filter((id) => targeted.has(id));
  if (rb.remaining.length === 0) {
    finishRollback(k, s, rb);
    return 'stop';
  }
  const retryAt = rb.retryAt ? Date.parse(rb.retryAt) : 0;
  if (s.now.getTime() < retryAt) {
    s.wakeAtMs = retryAt;
    return 'stop';
  }
  const reachable = new Set(s.targets.filter((t) => t.reachable).map((t) => t.instanceId));
  const ids = rb.remaining.filter((id) => reachable.has(id));
  if (ids.length === 0) return 'stop'; // unreachable ones stay targets until they are back
  await sendRollback(k, s, r, ids);
  return 'stop';
}
