/**
 * kstatus / `metav1.Condition` helpers (Kubernetes API conventions; Flux `fluxcd/pkg/runtime/conditions`).
 *
 * All functions are pure: they take a condition list and return a new one, never mutating the
 * input. Lists are kept in a stable order — `Ready` first, then the other types alphabetically —
 * so two computations of the same facts give deep-equal statuses (no status-write churn).
 *
 * `lastTransitionTime` moves when the condition's status, reason **or** message changes (the
 * project design; stricter Kubernetes convention moves it only on a status change). A change of
 * `observedGeneration` alone keeps the time.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A `metav1.Condition`. `lastTransitionTime` is RFC 3339 with second precision (`2026-01-01T00:00:00Z`). */
export interface Condition {
  /** CamelCase type, e.g. `Ready`. */
  type: string;
  status: ConditionStatus;
  /** CamelCase reason, e.g. `ExecutionFailed`. */
  reason: string;
  /** Human-readable, sanitized message (may be empty). */
  message: string;
  /** `metadata.generation` the condition was computed from. */
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** A condition to set; `lastTransitionTime` is computed. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** kstatus condition types. */
export const ReadyCondition = 'Ready';
export const ReconcilingCondition = 'Reconciling';
export const StalledCondition = 'Stalled';

/** Formats `now` as a `metav1.Time` (RFC 3339, whole seconds, UTC). */
export function toMetaTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Returns the condition of `type`, or undefined. */
export function getCondition(conds: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conds?.find((c) => c.type === type);
}

/** True when the condition of `type` exists with status `True`. */
export function isTrue(conds: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conds, type)?.status === 'True';
}

/** True when the condition of `type` exists with status `False`. */
export function isFalse(conds: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conds, type)?.status === 'False';
}

/**
 * Sets (adds or replaces) the condition `next.type`. `lastTransitionTime` is kept from the
 * existing condition when status, reason and message are unchanged; otherwise it is `now`.
 * Returns a new, sorted list.
 */
export function setCondition(
  conds: readonly Condition[] | undefined,
  next: ConditionInput,
  now: Date,
): Condition[] {
  const existing = getCondition(conds, next.type);
  const unchanged =
    existing !== undefined &&
    existing.status === next.status &&
    existing.reason === next.reason &&
    existing.message === next.message;
  const cond: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message: next.message,
    ...(next.observedGeneration !== undefined ? { observedGeneration: next.observedGeneration } : {}),
    lastTransitionTime: unchanged ? existing.lastTransitionTime : toMetaTime(now),
  };
  return sortConditions([...(conds ?? []).filter((c) => c.type !== next.type), cond]);
}

/** Removes the condition of `type`. Returns a new, sorted list. */
export function removeCondition(conds: readonly Condition[] | undefined, type: string): Condition[] {
  return sortConditions((conds ?? []).filter((c) => c.type !== type));
}

/** Sorts conditions: `Ready` first, then by type alphabetically. Returns a new list. */
export function sortConditions(conds: readonly Condition[]): Condition[] {
  return [...conds].sort((a, b) => {
    if (a.type === b.type) return 0;
    if (a.type === ReadyCondition) return -1;
    if (b.type === ReadyCondition) return 1;
    return a.type < b.type ? -1 : 1;
  });
}

/** Reason, message and generation shared by the mark helpers. */
export interface MarkArgs {
  reason: string;
  message?: string;
  observedGeneration?: number;
}

function input(type: string, status: ConditionStatus, args: MarkArgs): ConditionInput {
  return {
    type,
    status,
    reason: args.reason,
    message: args.message ?? '',
    ...(args.observedGeneration !== undefined ? { observedGeneration: args.observedGeneration } : {}),
  };
}

/** `Ready=True`. */
export function markReady(conds: readonly Condition[] | undefined, args: MarkArgs, now: Date): Condition[] {
  return setCondition(conds, input(ReadyCondition, 'True', args), now);
}

/** `Ready=False`. */
export function markNotReady(
  conds: readonly Condition[] | undefined,
  args: MarkArgs,
  now: Date,
): Condition[] {
  return setCondition(conds, input(ReadyCondition, 'False', args), now);
}

/** `Ready=Unknown` (first visit, before anything is known). */
export function markReadyUnknown(
  conds: readonly Condition[] | undefined,
  args: MarkArgs,
  now: Date,
): Condition[] {
  return setCondition(conds, input(ReadyCondition, 'Unknown', args), now);
}

/**
 * `Reconciling=True` (work in flight); removes `Stalled`, as Flux `MarkReconciling` does — the
 * two are never true together.
 */
export function markReconciling(
  conds: readonly Condition[] | undefined,
  args: MarkArgs,
  now: Date,
): Condition[] {
  return setCondition(
    removeCondition(conds, StalledCondition),
    input(ReconcilingCondition, 'True', args),
    now,
  );
}

/** Removes `Reconciling` (kstatus: abnormal-true conditions are absent when false). */
export function clearReconciling(conds: readonly Condition[] | undefined): Condition[] {
  return removeCondition(conds, ReconcilingCondition);
}

/**
 * `Stalled=True` (no progress possible without a spec change); removes `Reconciling`, as Flux
 * `MarkStalled` does. The caller also sets `Ready=False`, usually with the same reason.
 */
export function markStalled(conds: readonly Condition[] | undefined, args: MarkArgs, now: Date): Condition[] {
  return setCondition(
    removeCondition(conds, ReconcilingCondition),
    input(StalledCondition, 'True', args),
    now,
  );
}

/** Removes `Stalled`. */
export function clearStalled(conds: readonly Condition[] | undefined): Condition[] {
  return removeCondition(conds, StalledCondition);
}
