/**
 * The rollout's progress steps (see rollout.ts for their order): supersede an old revision, start a
 * rollout, stop at a settled one, the progress deadline, wait for a running batch, the error budget,
 * re-send transient download failures, complete (the revision becomes stable), enrol instances that
 * lack it, and start the next batch. Each returns `next` (go on) or `stop` (nothing more this
 * reconcile).
 */
import { RolloutAction, RolloutSucceededEvent, RolloutSupersededEvent } from '../../api/events.js';
import { toMetaTime } from '../../runtime/conditions.js';
import { analysisPending } from './analysis.js';
import { failRollout, finishRollout, firstFailure, newRollout, startWork } from './lifecycle.js';
import { batchSizeOf, emit, inFlightIds, resolveCount, type AppContext, type AppScope } from './scope.js';
import { snapshotStable } from './stable.js';
import { nextZoneIds, zoneOf } from '../shared/zones.js';

/** What a step decided. */
export type StepOutcome = 'next' | 'stop';

/**
 * An object made stable before `status.stableRelease` existed: while its spec still is the stable
 * revision, the release is recorded from it, so a later rollback can redeploy it.
 */
export function recordStable(_k: AppContext, s: AppScope): StepOutcome {
  if (s.stable && !s.stableRelease && s.stable === s.revision) {
    s.stableRelease = snapshotStable(s.obj, s.obj.spec, s.stable);
  }
  return 'next';
}

/** A new revision: the old rollout is superseded once nothing of it runs any more. */
export function supersede(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  if (!r || r.revision === s.revision) return 'next';
  if (s.inFlight.length > 0) return 'stop';
  if (s.phase === 'Progressing' || s.phase === 'Paused' || s.phase === 'RollingBack') {
    finishRollout(k, s, 'Superseded', `superseded by revision ${s.revision}`);
    emit(
      k,
      s,
      'Normal',
      RolloutSupersededEvent,
      RolloutAction,
      `Rollout of revision ${r.revision} superseded by revision ${s.revision}`,
    );
  }
  delete s.rollout;
  return 'next';
}

/** No rollout yet: Succeeded when every reachable target already runs the stable revision, else start one. */
export function startRollout(k: AppContext, s: AppScope): StepOutcome {
  if (s.rollout) return 'next';
  if (s.inFlight.length > 0) return 'stop';
  const reachable = s.targets.filter((t) => t.reachable);
  const current = reachable.every((t) => s.tags.get(t.instanceId) === s.revision);
  if (reachable.length > 0 && current && s.stable === s.revision) {
    s.phase = 'Succeeded';
    return 'stop';
  }
  s.rollout = newRollout(k, s, false);
  s.phase = 'Progressing';
  for (const id of s.ledger.ids()) s.ledger.clear(id); // a new revision gets a fresh chance everywhere
  return 'next';
}

/** RolledBack and Failed hold until the spec changes. */
export function settled(_k: AppContext, s: AppScope): StepOutcome {
  return s.phase === 'RolledBack' || s.phase === 'Failed' ? 'stop' : 'next';
}

/** No batch started or finished for progressDeadlineSeconds (pauses and analyses excluded): cancel and fail. */
export async function deadline(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const r = s.rollout;
  if (!r || r.enrol || r.pausedAt || r.failure || s.phase === 'RollingBack') return 'next';
  if (analysisPending(s)) return 'next'; // bounded by its own limits; its success is progress
  const seconds = s.obj.spec.progressDeadlineSeconds ?? 1800;
  if (s.now.getTime() - Date.parse(r.lastProgressTime) <= seconds * 1000) return 'next';
  for (const w of s.inFlight.filter((x) => x.action === 'deploy' && !x.pending && !x.trafficPhase))
    await s.tracker.cancel(w);
  // A batch still draining is never sent (its backends are restored by the kit: traffic.ts).
  s.inFlight = s.inFlight.filter((x) => !(x.action === 'deploy' && x.trafficPhase === 'Draining'));
  failRollout(k, s, { message: `no progress for ${seconds}s (progressDeadlineSeconds)` });
  return 'next';
}

/** A batch runs, or its start awaits an answer: nothing else starts. */
export function awaitBatch(_k: AppContext, s: AppScope): StepOutcome {
  if (s.phase === 'RollingBack') return 'next';
  return s.inFlight.some((w) => w.action === 'deploy') ? 'stop' : 'next';
}

/** More failures than maxErrors fail the rollout (an enrolment keeps its failures in the ledger). */
export function errorBudget(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  if (!r || r.enrol || s.phase === 'RollingBack') return 'next';
  const maxErrors = resolveCount(s.obj.spec.strategy?.maxErrors, s.targets.length, 0, 'down');
  if (r.failed > maxErrors) failRollout(k, s, firstFailure(s));
  return 'next';
}

/** Instances whose download failed in transport are re-sent, as part of their batch, after a backoff. */
export async function retryDownloads(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const r = s.rollout;
  const t = r?.retrying;
  if (!r || !t || t.sent) return 'next';
  const notBefore = Date.parse(t.notBefore);
  if (s.now.getTime() < notBefore) {
    s.wakeAtMs = notBefore;
    return 'stop';
  }
  const reachable = new Set(s.targets.filter((x) => x.reachable).map((x) => x.instanceId));
  const ids = t.instanceIds.filter((id) => reachable.has(id));
  if (ids.length === 0) {
    delete r.retrying; // released or unreachable: nothing to re-send
    return 'next';
  }
  const scope = `${r.revision}/${r.sequence}/retry${t.attempt}`;
  const describe = `deploy ${s.obj.spec.application} ${s.obj.spec.version}, download attempt ${t.attempt}`;
  await startWork(
    k,
    s,
    { action: 'deploy', ids, round: t.batch, tokenScope: scope, describe },
    {
      onIntent: () => {
        t.sent = true;
        t.instanceIds = ids;
      },
    },
  );
  return 'stop';
}

/** Reachable targets that do not run `revision`, are not busy, failed or waiting for a retry (sorted by target order). */
export function pendingOf(s: AppScope, revision: string): string[] {
  const busy = new Set([...inFlightIds(s), ...(s.rollout?.retrying?.instanceIds ?? [])]);
  const retryFailed = s.rollout?.enrol === true && !s.ledger.inBackoff(s.now);
  return s.targets
    .filter((t) => t.reachable && s.tags.get(t.instanceId) !== revision && !busy.has(t.instanceId))
    .filter((t) => !s.ledger.has(t.instanceId) || retryFailed)
    .map((t) => t.instanceId);
}

/** Nothing left to deploy: the rollout succeeded and its revision becomes the stable one. */
export function complete(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  if (!r || r.retrying || pendingOf(s, r.revision).length > 0) return 'next';
  if (s.phase === 'Succeeded' && s.stable === r.revision) return 'stop';
  s.phase = 'Succeeded';
  if (r.enrol) return 'stop';
  s.stable = r.revision;
  s.stableVersion = r.version ?? s.obj.spec.version;
  s.stableRelease = snapshotStable(s.obj, s.obj.spec, r.revision);
  finishRollout(k, s, 'Succeeded');
  const reachable = s.targets.filter((t) => t.reachable).length;
  emit(
    k,
    s,
    'Normal',
    RolloutSucceededEvent,
    RolloutAction,
    `Revision ${r.revision} (version ${s.obj.spec.version}) runs on ${reachable} reachable instance(s)`,
  );
  return 'stop';
}

/** Drift after success: instances enrolled by tag (or restored from an image) get the stable revision. */
export function enrol(k: AppContext, s: AppScope): StepOutcome {
  const r = s.rollout;
  if (!r || s.phase !== 'Succeeded') return 'next';
  if (s.stable !== r.revision) return 'stop';
  if (!r.enrol) s.rollout = { ...newRollout(k, s, true), nextBatch: r.nextBatch, batches: r.batches };
  s.phase = 'Progressing';
  return 'next';
}

/**
 * Starts the next batch (the canary first); its row appears once one of its invocations exists.
 * With `strategy.zoneOrder` a batch holds instances of one zone (it may be smaller than batchSize
 * at a zone's end) and zones go in that order.
 */
export async function nextBatch(k: AppContext, s: AppScope): Promise<StepOutcome> {
  const r = s.rollout;
  if (!r) return 'stop';
  const { spec } = s.obj;
  const canary = spec.strategy?.canary;
  const targeted = s.targets.length;
  const index = r.nextBatch;
  const size = index === 0 && canary && !r.enrol ? (canary.instances ?? 1) : batchSizeOf(spec, targeted);
  const req = {
    action: 'deploy' as const,
    // strategy.zoneOrder: the batch takes instances of one zone only, zone after zone.
    ids: nextZoneIds(pendingOf(s, r.revision), zoneOf(s.targets), spec.strategy?.zoneOrder, inFlightIds(s)),
    round: index,
    tokenScope: `${r.revision}/${r.sequence}`,
    describe: `deploy ${spec.application} ${spec.version}`,
  };
  await startWork(k, s, req, { limit: size, onIntent: () => (r.lastProgressTime = toMetaTime(s.now)) });
  return 'stop';
}
