/**
 * The AppRelease rollout as an ordered list of steps (after Argo Rollouts' step index), run when
 * writes are allowed. Each step reads and records facts on the scope and returns `next` or `stop`;
 * the first `stop` ends the rollout's part of this reconcile. The order is the contract:
 *
 * 0. recordStable — an object made stable before the stable release was kept records it;
 * 1. supersede — a new revision ends the old rollout once nothing of it runs;
 * 2. startRollout — a rollout of the spec's revision, unless every target already runs it;
 * 3. settled — RolledBack and Failed hold until the spec changes;
 * 4. deadline — no progress for progressDeadlineSeconds cancels the batch and fails the rollout;
 * 5. awaitBatch — nothing starts while a batch runs or its start awaits an answer;
 * 6. errorBudget — more failures than maxErrors fail the rollout;
 * 6a. analysisGate — with spec.analysis, the newest finished batch waits for its metric gate (a
 *     failure fails the rollout, and the rollback below starts at once; analysis.ts);
 * 7. rollBack — a failed rollout moves its targets back (and only then is RolledBack);
 * 8. retryDownloads — transport failures of the download are re-sent with backoff;
 * 8a. refreshSecrets — a changed Secret re-deploys the stable revision's instances (secret-delivery.ts);
 * 9. complete — nothing pending: the revision becomes stable (and is kept redeployable);
 * 10. enrol — after success, instances that lack it get it (drift);
 * 11. canaryPause, 12. specPause, 13. pauseBetweenBatches — the holds;
 * 14. nextBatch — the next batch (the canary first).
 *
 * After the steps, invocations started this reconcile are linked to their batch row or rollback, so
 * the same status write records them.
 */
import { analysisGate } from './analysis.js';
import { link } from './fold.js';
import { canaryPause, pauseBetweenBatches, specPause } from './pauses.js';
import {
  awaitBatch,
  complete,
  deadline,
  enrol,
  errorBudget,
  nextBatch,
  recordStable,
  retryDownloads,
  settled,
  startRollout,
  supersede,
  type StepOutcome,
} from './progress.js';
import { rollBack } from './rollback.js';
import { refreshSecrets } from './secret-delivery.js';
import type { AppContext, AppScope } from './scope.js';

/** One step of the rollout. */
export interface RolloutStep {
  name: string;
  run(k: AppContext, s: AppScope): StepOutcome | Promise<StepOutcome>;
}

/** The steps, in order (see the module comment). */
export const ROLLOUT_STEPS: readonly RolloutStep[] = [
  { name: 'recordStable', run: recordStable },
  { name: 'supersede', run: supersede },
  { name: 'startRollout', run: startRollout },
  { name: 'settled', run: settled },
  { name: 'deadline', run: deadline },
  { name: 'awaitBatch', run: awaitBatch },
  { name: 'errorBudget', run: errorBudget },
  { name: 'analysisGate', run: analysisGate },
  { name: 'rollBack', run: rollBack },
  { name: 'retryDownloads', run: retryDownloads },
  { name: 'refreshSecrets', run: refreshSecrets },
  { name: 'complete', run: complete },
  { name: 'enrol', run: enrol },
  { name: 'canaryPause', run: canaryPause },
  { name: 'specPause', run: specPause },
  { name: 'pauseBetweenBatches', run: pauseBetweenBatches },
  { name: 'nextBatch', run: nextBatch },
];

/**
 * advanceRollout runs {@link ROLLOUT_STEPS} until one stops (nothing when writes are not allowed).
 * @returns the name of the step that stopped, or undefined when every step went on.
 * @throws ReconcileError from a cloud call of a step (what it recorded stays on the scope).
 */
export async function advanceRollout(k: AppContext, s: AppScope): Promise<string | undefined> {
  if (!s.writesAllowed) return undefined;
  try {
    for (const step of ROLLOUT_STEPS) if ((await step.run(k, s)) === 'stop') return step.name;
    return undefined;
  } finally {
    link(k, s, s.inFlight);
  }
}
