/**
 * What several rollout steps do to a rollout: start one (`RolloutStarted`), finish one (history
 * entry, metric), fail one (rollback or `Failed`), leave a pause, and start work through the kit.
 */
import { PROMOTE_REQUESTED_ANNOTATION, type HistoryEntry, type RolloutStatus } from '../../api/apprelease.js';
import {
  RolloutAction,
  RolloutFailedEvent,
  RolloutStartedEvent,
  WaitingForInstanceLockEvent,
} from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { describeHolder } from '../shared/lock.js';
import type { WorkKit } from '../shared/start.js';
import type { WorkItem } from '../shared/work.js';
import type { RolloutResult } from './metrics.js';
import { emit, redact, stepOfMessage, type AppContext, type AppScope } from './scope.js';
import type { WrapperAction } from './wrapper.js';

/** Why a rollout failed (`status.rollout.failure`). */
export interface Failure {
  message: string;
  step?: string;
  instanceId?: string;
  exitCode?: number;
}

/** A new rollout of the spec's revision (`enrol`: of instances lacking the stable one, no canary). */
export function newRollout(k: AppContext, s: AppScope, enrol: boolean): RolloutStatus {
  s.sequence += 1;
  const now = toMetaTime(s.now);
  const r: RolloutStatus = {
    revision: s.revision,
    version: s.obj.spec.version,
    sequence: s.sequence,
    startTime: now,
    lastProgressTime: now,
    nextBatch: 0,
    failed: 0,
    batches: [],
    ...(enrol ? { enrol: true } : {}),
  };
  const promote = s.obj.metadata.annotations?.[PROMOTE_REQUESTED_ANNOTATION];
  if (promote !== undefined) r.promoteHandled = promote;
  const what = enrol
    ? `Enrolling instance(s) without revision ${s.revision} (version ${s.obj.spec.version})`
    : `Rolling out revision ${s.revision} (version ${s.obj.spec.version})${s.stable ? `; stable revision ${s.stable}` : ''}`;
  emit(k, s, 'Normal', RolloutStartedEvent, RolloutAction, what);
  return r;
}

/** Ends the rollout in `status.history` (newest first) and the rollouts metric. */
export function finishRollout(k: AppContext, s: AppScope, result: RolloutResult, message?: string): void {
  const r = s.rollout;
  if (!r) return;
  const entry: HistoryEntry = {
    revision: r.revision,
    ...(r.version ? { version: r.version } : {}),
    result,
    ...(message ? { message: redact(s.obj, message).slice(0, 1024) } : {}),
    finished: toMetaTime(s.now),
  };
  s.history = [entry, ...s.history].slice(0, s.obj.spec.revisionHistoryLimit ?? 10);
  k.metrics.rolloutFinished(s.obj.metadata.namespace ?? '', s.obj.metadata.name ?? '', result);
}

/** Fails the rollout: to `RollingBack` (automatic rollback) or `Failed`. */
export function failRollout(k: AppContext, s: AppScope, why: Failure): void {
  const r = s.rollout as RolloutStatus;
  r.failure = {
    message: redact(s.obj, why.message).slice(0, 2048),
    ...(why.step ? { step: why.step } : {}),
    ...(why.instanceId ? { instanceId: why.instanceId } : {}),
    ...(why.exitCode !== undefined ? { exitCode: why.exitCode } : {}),
  };
  emit(
    k,
    s,
    'Warning',
    RolloutFailedEvent,
    RolloutAction,
    `Rollout of revision ${r.revision} failed: ${r.failure.message}`,
  );
  if (s.obj.spec.rollback?.automatic ?? true) {
    s.phase = 'RollingBack';
  } else {
    s.phase = 'Failed';
    finishRollout(k, s, 'Failed', r.failure.message);
  }
}

/** The first deploy failure of this rollout: from this reconcile's results, else from the ledger. */
export function firstFailure(s: AppScope): Failure {
  const r = [...s.results.values()].find((x) => !x.ok && x.action === 'deploy');
  if (r) {
    const tail = (r.output ?? '')
      .split('\n')
      .filter((l) => l && !l.startsWith('ecsops-'))
      .slice(-3)
      .join(' | ');
    return {
      message:
        `${r.instanceId} failed at step ${r.step} (exit ${r.exitCode ?? '?'})${tail ? `: ${tail}` : ''}`.slice(
          0,
          2048,
        ),
      ...(r.step ? { step: r.step } : {}),
      instanceId: r.instanceId,
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    };
  }
  const id = s.ledger.ids()[0];
  const rec = id ? s.ledger.get(id) : undefined;
  const step = stepOfMessage(rec?.message);
  return {
    message: `${id ?? '?'}: ${rec?.message ?? 'failed'}`,
    ...(step ? { step } : {}),
    ...(id ? { instanceId: id } : {}),
  };
}

/** Leaves a pause: the time paused does not count toward the progress deadline. */
export function resume(r: RolloutStatus, now: Date): void {
  if (r.pausedAt) {
    const paused = now.getTime() - Date.parse(r.pausedAt);
    r.lastProgressTime = toMetaTime(new Date(Date.parse(r.lastProgressTime) + Math.max(0, paused)));
  }
  delete r.pausedAt;
  delete r.pauseReason;
}

/** What to start through the kit. */
export interface StartWork {
  action: WrapperAction;
  ids: string[];
  /** Batch index (deploy) or attempt (rollback); part of the ClientToken. */
  round: number;
  tokenScope: string;
  describe: string;
}

/**
 * Starts `req` through the kit (lock, intent, ≤ 100 per RunCommand). Instances another resource
 * holds are recorded in `s.waiting` with a `WaitingForInstanceLock` Event.
 * @returns the started invocations.
 * @throws ReconcileError from the kit (a failed batch stays pending and is re-sent next time).
 */
export async function startWork(
  k: AppContext,
  s: AppScope,
  req: StartWork,
  opts: Parameters<WorkKit['start']>[2] = {},
): Promise<WorkItem[]> {
  const { action, ids, round, tokenScope, describe } = req;
  const out = await k.work.start(s, { round, action, instanceIds: ids, describe, tokenScope }, opts);
  const first = out.held[0];
  if (first) {
    if (!s.waiting) {
      emit(
        k,
        s,
        'Normal',
        WaitingForInstanceLockEvent,
        RolloutAction,
        `${out.held.length} instance(s) wait for ${describeHolder(first.holder)} to finish its work on them`,
      );
    }
    s.waiting = { holder: first.holder, count: out.held.length };
  }
  return out.started;
}
