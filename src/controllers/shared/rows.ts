/**
 * Bounded per-instance status rows and summaries, generic over a kind's instance-state enum
 * (DESIGN §1 common status): `status.instances` shows at most N rows, the most important states
 * first (failed and in-progress before healthy), while `status.summary` counts every instance.
 * Pure: time is passed in.
 */
import { toMetaTime } from '../../runtime/conditions.js';

/** The fields every row has (see `instanceRowProperties` in src/api/common.ts). */
export interface RowBase<State extends string> {
  instanceId: string;
  state: State;
  executionId?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** How a kind turns one fact into a row. */
export interface RowSpec<State extends string, F, Row extends RowBase<State>> {
  /** Display precedence: lower sorts first (e.g. Failed 0, InProgress 1, ...). */
  order: Readonly<Record<State, number>>;
  stateOf(fact: F): State;
  idOf(fact: F): string;
  /** The row without `lastTransitionTime` (computed here); `before` is the previous row, if any. */
  build(fact: F, state: State, before: Row | undefined): Omit<Row, 'lastTransitionTime'>;
}

/** Maximum characters of a row message. */
export const MAX_ROW_MESSAGE = 1024;

/**
 * `status.instances`: one row per fact, at most `limit`, sorted by the kind's precedence then by
 * instance ID. `lastTransitionTime` is carried over from `previous` while the row's state is
 * unchanged, so identical facts give an identical status (no write churn).
 */
export function boundedRows<State extends string, F, Row extends RowBase<State>>(
  facts: readonly F[],
  previous: readonly Row[] | undefined,
  spec: RowSpec<State, F, Row>,
  limit: number,
  now: Date,
): Row[] {
  const prev = new Map((previous ?? []).map((r) => [r.instanceId, r]));
  const nowIso = toMetaTime(now);
  const rows = facts.map((f) => {
    const state = spec.stateOf(f);
    const before = prev.get(spec.idOf(f));
    const row = { ...spec.build(f, state, before) } as Row;
    if (row.message !== undefined) row.message = row.message.slice(0, MAX_ROW_MESSAGE);
    row.lastTransitionTime =
      before && before.state === state && before.lastTransitionTime ? before.lastTransitionTime : nowIso;
    return row;
  });
  rows.sort(
    (a, b) =>
      spec.order[a.state] - spec.order[b.state] ||
      (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0),
  );
  return rows.slice(0, Math.max(0, limit));
}

/** `Failed` → `failed`, `InProgress` → `inProgress`: the summary key of a state. */
export function summaryKey(state: string): string {
  return state.charAt(0).toLowerCase() + state.slice(1);
}

/**
 * Counts over ALL facts: `{ targeted, <summaryKey(state)>: n, ... }` with every state of `states`
 * present (0 when none).
 */
export function countStates<State extends string, F>(
  facts: readonly F[],
  stateOf: (f: F) => State,
  states: readonly State[],
): { targeted: number } & Record<string, number> {
  const out: Record<string, number> = { targeted: facts.length };
  for (const s of states) out[summaryKey(s)] = 0;
  for (const f of facts) {
    const k = summaryKey(stateOf(f));
    out[k] = (out[k] ?? 0) + 1;
  }
  return out as { targeted: number } & Record<string, number>;
}
