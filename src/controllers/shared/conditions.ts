/**
 * Per-type pure condition setters shared by every kind (cluster-api `set<Type>Condition`, Flux
 * `summarize`): a kind derives a {@link Verdict} from its facts; these functions turn the verdict,
 * or the error that ended the reconcile, into kstatus conditions (DESIGN §4). No I/O and no clock
 * reads: `now` is passed in. Each setter has its own table test.
 */
import { ProgressingReason } from '../../api/conditions.js';
import {
  clearReconciling,
  clearStalled,
  markNotReady,
  markReady,
  markReadyUnknown,
  markReconciling,
  markStalled,
  setCondition,
  type Condition,
  type ConditionStatus,
} from '../../runtime/conditions.js';

/** A reason and a human-readable (already sanitized) message. */
export interface ReasonMessage {
  reason: string;
  message: string;
}

/** What a kind concluded from this reconcile's facts. */
export interface Verdict {
  /** The Ready condition: True only when the declared state holds on every reachable target. */
  ready: ReasonMessage & { status: ConditionStatus };
  /** Set while work is in flight (Reconciling=True); absent otherwise. */
  reconciling?: ReasonMessage;
  /**
   * Kind-specific condition types beyond Ready / Reconciling / Stalled (e.g. PatchPolicy's
   * `Compliant`), set for the generation with the same transition rules. Types not listed keep
   * their previous value.
   */
  extra?: ReadonlyArray<ReasonMessage & { type: string; status: ConditionStatus }>;
}

/**
 * setReadyCondition sets `Ready` to `ready` for `generation`. Without `ready`, it only makes sure a
 * `Ready` condition exists: `Unknown` / `Progressing` on the first visit (kstatus: conditions are
 * present from the first write), an existing one is left as it is.
 */
export function setReadyCondition(
  conds: readonly Condition[] | undefined,
  generation: number,
  ready: (ReasonMessage & { status: ConditionStatus }) | undefined,
  now: Date,
): Condition[] {
  if (!ready) {
    if ((conds ?? []).some((c) => c.type === 'Ready')) return [...(conds ?? [])];
    return markReadyUnknown(
      conds,
      { reason: ProgressingReason, message: 'reconciliation in progress', observedGeneration: generation },
      now,
    );
  }
  const args = { reason: ready.reason, message: ready.message, observedGeneration: generation };
  if (ready.status === 'True') return markReady(conds, args, now);
  if (ready.status === 'False') return markNotReady(conds, args, now);
  return markReadyUnknown(conds, args, now);
}

/**
 * setReconcilingCondition sets `Reconciling=True` with `reconciling` (and removes `Stalled`, as
 * Flux does), or removes `Reconciling` when `reconciling` is undefined (kstatus: abnormal-true
 * conditions are absent when false).
 */
export function setReconcilingCondition(
  conds: readonly Condition[] | undefined,
  generation: number,
  reconciling: ReasonMessage | undefined,
  now: Date,
): Condition[] {
  if (!reconciling) return clearReconciling(conds);
  return markReconciling(
    conds,
    { reason: reconciling.reason, message: reconciling.message, observedGeneration: generation },
    now,
  );
}

/**
 * setStalledCondition sets `Stalled=True` with `stalled` (and removes `Reconciling`), or removes
 * `Stalled` when `stalled` is undefined.
 */
export function setStalledCondition(
  conds: readonly Condition[] | undefined,
  generation: number,
  stalled: ReasonMessage | undefined,
  now: Date,
): Condition[] {
  if (!stalled) return clearStalled(conds);
  return markStalled(
    conds,
    { reason: stalled.reason, message: stalled.message, observedGeneration: generation },
    now,
  );
}

/** How a reconcile ended, as far as conditions are concerned. */
export type Outcome =
  | { kind: 'verdict'; verdict: Verdict }
  /** A transient error ended the reconcile early: it is retried with backoff. */
  | { kind: 'retrying'; error: ReasonMessage }
  /** Only a spec (or RAM) change can help. */
  | { kind: 'stalled'; error: ReasonMessage }
  /** A generation was seen for the first time: nothing is known yet (before any cloud call). */
  | { kind: 'started' };

/**
 * The conditions for `outcome` (Flux `summarize`):
 * - `verdict` → Ready as concluded, Reconciling while work is in flight, Stalled removed;
 * - `retrying` → Reconciling=True with the error's reason; Ready untouched (Unknown on the first
 *   visit) so a throttled API does not flap Ready;
 * - `stalled` → Stalled=True and Ready=False with the stalled reason, Reconciling removed;
 * - `started` → Ready=Unknown `Progressing` and Reconciling=True `Progressing` for the generation.
 */
export function summarizeConditions(
  prev: readonly Condition[] | undefined,
  generation: number,
  outcome: Outcome,
  now: Date,
): Condition[] {
  switch (outcome.kind) {
    case 'started': {
      const msg = { reason: ProgressingReason, message: `reconciling generation ${generation}` };
      const conds = setReadyCondition(prev, generation, { status: 'Unknown', ...msg }, now);
      return setReconcilingCondition(conds, generation, msg, now);
    }
    case 'retrying': {
      const conds = setReadyCondition(prev, generation, undefined, now);
      return setReconcilingCondition(conds, generation, outcome.error, now);
    }
    case 'stalled': {
      const conds = setReadyCondition(prev, generation, { status: 'False', ...outcome.error }, now);
      return setStalledCondition(conds, generation, outcome.error, now);
    }
    case 'verdict': {
      let conds = setStalledCondition(prev, generation, undefined, now);
      conds = setReadyCondition(conds, generation, outcome.verdict.ready, now);
      for (const c of outcome.verdict.extra ?? []) {
        conds = setCondition(conds, { ...c, observedGeneration: generation }, now);
      }
      return setReconcilingCondition(conds, generation, outcome.verdict.reconciling, now);
    }
  }
}
