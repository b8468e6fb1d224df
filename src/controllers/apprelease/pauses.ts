/**
 * The rollout's holds (see rollout.ts for their order): the canary pause until promoted (or
 * `pauseDuration`), `spec.paused`, and `pauseBetweenBatches`. A promote (a new value of the
 * annotation `ecsops.io/promote-requested-at`) applies only to a pause that has begun: a value set
 * while the canary batch still runs is taken as already handled when the pause begins.
 */
import { PROMOTE_REQUESTED_ANNOTATION, type RolloutStatus } from '../../api/apprelease.js';
import { CanaryPauseReason, PausedBySpecReason } from '../../api/conditions.js';
import { PromoteAction, RolloutAction, RolloutPausedEvent, RolloutPromotedEvent } from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { resume } from './lifecycle.js';
import type { StepOutcome } from './progress.js';
import { durationMs, emit, type AppContext, type AppScope } from './scope.js';

/** Holds after the canary batch finished until promoted or `canary.pauseDuration` passed. */
/** Begins the canary pause (once): a promote value already set is taken as handled. */
function beginCanaryPause(k: AppContext, s: AppScope, r: RolloutStatus, promote: string | undefined): void {
  if (r.pausedAt && r.pauseReason === 'canary') return;
  r.pausedAt ??= toMetaTime(s.now);
  r.pauseReason = 'canary';
  if (promote !== undefined) r.promoteHandled = promote;
  else delete r.promoteHandled;
  const note = `Paused after the canary batch of revision ${r.revision}; set annotation ${PROMOTE_REQUESTED_ANNOTATION} to continue`;
  emit(k, s, 'Normal', RolloutPausedEvent, RolloutAction, note);
}

export function canaryPause(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  const canary = s.obj.spec.strategy?.canary;
  if (!r || r.enrol || !canary || !(canary.pause ?? true) || r.canaryPromoted) return 'next';
  if (!r.batches.some((b) => b.index === 0 && b.phase !== 'Running')) return 'next';
  const promote = s.obj.metadata.annotations?.[PROMOTE_REQUESTED_ANNOTATION];
  beginCanaryPause(k, s, r, promote);
  const pausedAt = Date.parse(r.pausedAt ?? '');
  const pauseMs = durationMs(canary.pauseDuration);
  const elapsed = pauseMs > 0 && s.now.getTime() - pausedAt >= pauseMs;
  if ((promote === undefined || promote === r.promoteHandled) && !elapsed) {
    s.phase = 'Paused';
    const wait = `waiting for ${PROMOTE_REQUESTED_ANNOTATION}${pauseMs > 0 ? ` or ${canary.pauseDuration}` : ''}`;
    s.held = { reason: CanaryPauseReason, message: `canary of revision ${r.revision} done; ${wait}` };
    if (pauseMs > 0) s.wakeAtMs = pausedAt + pauseMs;
    return 'stop';
  }
  if (promote !== undefined) r.promoteHandled = promote;
  r.canaryPromoted = true;
  resume(r, s.now);
  const note = `Rollout of revision ${r.revision} promoted after the canary`;
  emit(k, s, 'Normal', RolloutPromotedEvent, PromoteAction, note);
  return 'next';
}

/** Holds before the next batch while `spec.paused` is true. */
export function specPause(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  if (!r || r.enrol) return 'next';
  if (s.obj.spec.paused) {
    if (r.pauseReason !== 'spec') {
      r.pausedAt ??= toMetaTime(s.now);
      r.pauseReason = 'spec';
      emit(
        k,
        s,
        'Normal',
        RolloutPausedEvent,
        RolloutAction,
        `Rollout of revision ${r.revision} paused by spec.paused`,
      );
    }
    s.phase = 'Paused';
    s.held = { reason: PausedBySpecReason, message: `spec.paused is true; batch ${r.nextBatch} waits` };
    return 'stop';
  }
  if (r.pauseReason === 'spec') {
    resume(r, s.now);
    emit(
      k,
      s,
      'Normal',
      RolloutPromotedEvent,
      PromoteAction,
      `Rollout of revision ${r.revision} resumed (spec.paused false)`,
    );
  }
  return 'next';
}

/** Waits `pauseBetweenBatches` after the last batch finished. */
export function pauseBetweenBatches(_k: AppContext, s: AppScope): StepOutcome {
  s.phase = 'Progressing';
  const between = durationMs(s.obj.spec.strategy?.pauseBetweenBatches);
  const last = s.rollout?.batches.at(-1);
  if (between <= 0 || !last?.finishTime) return 'next';
  const until = Date.parse(last.finishTime) + between;
  if (s.now.getTime() >= until) return 'next';
  s.wakeAtMs = until;
  return 'stop';
}
