/**
 * Disruption budgets (InstanceDisruptionBudget, issue 23): how many selected instances may be
 * unavailable at once, how many are now, and which of a start's instances may start without
 * exceeding any budget. The arithmetic is pure; {@link DisruptionBudgets} keeps, in this process,
 * what each budget's controller last resolved (instance → zone) and answers the start path.
 *
 * Rounding: a percentage is scaled and rounded UP, as Kubernetes resolves a PodDisruptionBudget's
 * `maxUnavailable` — the disruption controller's `getExpectedPodCount` calls
 * `intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, expectedCount, true)`
 * (roundUp = true; kubernetes/kubernetes pkg/controller/disruption/disruption.go,
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/disruption/disruption.go),
 * documented in "Specifying a Disruption Budget for your Application", section "Rounding logic
 * when specifying percentages" (https://kubernetes.io/docs/tasks/run-application/configure-pdb/):
 * "When you specify the value maxUnavailable as a percentage, Kubernetes rounds up the number of
 * Pods that may be disrupted". So 10 % of 7 instances allows 1, 10 % of 11 allows 2, and any
 * percentage above 0 % of a non-empty selection allows at least 1. An integer is taken as is (it may
 * exceed the selection, as in Kubernetes).
 *
 * Unavailable: a selected instance is unavailable while ANY resource holds it in the cross-kind
 * per-instance lock (lock.ts: `status.executions[].lockKeys` of every kind, plus process-local
 * holds), the starting resource's own holds included.
 */
import type { InstanceDisruptionBudget } from '../../api/instancedisruptionbudget.js';
import type { ObjectReader } from './deps.js';
import { instanceLockKey } from './lock.js';

/** A `maxUnavailable` the arithmetic cannot use (admission rejects these; see the CRD's CEL rule). */
export class BudgetSpecError extends Error {}

/**
 * The number of selected instances that may be unavailable at once.
 * @param maxUnavailable an integer >= 0, or a string `"N%"` with 0 <= N <= 100 (an integer string
 *   such as `"3"` is read as 3, as `intstr.FromString` values that are not percentages are not:
 *   Kubernetes rejects them; we accept them for robustness).
 * @param selected selected instances (>= 0).
 * @returns the integer, or ceil(N × selected / 100).
 * @throws BudgetSpecError for a negative or non-integer number, or a string that is neither.
 */
export function allowedUnavailable(maxUnavailable: number | string, selected: number): number {
  if (typeof maxUnavailable === 'number') {
    if (!Number.isInteger(maxUnavailable) || maxUnavailable < 0)
      throw new BudgetSpecError(`maxUnavailable ${maxUnavailable} is not an integer >= 0`);
    return maxUnavailable;
  }
  const m = /^(\d{1,3})%$/.exec(maxUnavailable);
  if (m) {
    const pct = Number(m[1]);
    if (pct > 100) throw new BudgetSpecError(`maxUnavailable ${maxUnavailable} is above 100%`);
    // Integer arithmetic: ceil(pct * selected / 100) without floating-point error.
    return Math.floor((pct * selected + 99) / 100);
  }
  if (/^\d{1,9}$/.test(maxUnavailable)) return Number(maxUnavailable);
  throw new BudgetSpecError(
    `maxUnavailable "${maxUnavailable}" is neither an integer nor a percentage such as "10%"`,
  );
}

/** What a budget is, for the arithmetic: its spec and what its controller last resolved. */
export interface BudgetView {
  name: string;
  maxUnavailable: number | string;
  perZone: boolean;
  /** Selected instance ID → zone ID (`''` when unknown). */
  instances: ReadonlyMap<string, string>;
}

/** One bucket of a budget: the whole selection, or one zone with `perZone`. */
export interface BucketUsage {
  /** The zone, with `perZone`; undefined for the whole selection. */
  zoneId?: string;
  selected: number;
  allowed: number;
  /** Selected instances of the bucket held now. */
  unavailable: number;
}

/** The bucket key of an instance in `b`: its zone with `perZone`, else `''`. */
function bucketOf(b: BudgetView, zoneId: string): string {
  return b.perZone ? zoneId : '';
}

/**
 * The usage of budget `b`: one bucket (the whole selection) or, with `perZone`, one per zone
 * (sorted by zone ID), each with its selected count, allowed count and held count.
 * @param isHeld whether an instance is held now (by any resource).
 * @throws BudgetSpecError from {@link allowedUnavailable}.
 */
export function budgetUsage(b: BudgetView, isHeld: (instanceId: string) => boolean): BucketUsage[] {
  const buckets = new Map<string, { selected: number; unavailable: number }>();
  for (const [id, zone] of b.instances) {
    const key = bucketOf(b, zone);
    const u = buckets.get(key) ?? { selected: 0, unavailable: 0 };
    u.selected += 1;
    if (isHeld(id)) u.unavailable += 1;
    buckets.set(key, u);
  }
  if (!b.perZone && buckets.size === 0) buckets.set('', { selected: 0, unavailable: 0 });
  return [...buckets.entries()]
    .sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0))
    .map(([key, u]) => ({
      ...(b.perZone ? { zoneId: key } : {}),
      selected: u.selected,
      unavailable: u.unavailable,
      allowed: allowedUnavailable(b.maxUnavailable, u.selected),
    }));
}

/** A budget bucket that keeps instances from starting: its usage (held now, before the start) and budget name. */
export type BudgetBlock = BucketUsage & { budget: string };

/** What {@link admitStarts} decided. */
export interface Admission {
  /** Candidates that may start now, in candidate order. */
  admitted: string[];
  /** Instances that wait for headroom. */
  waiting: number;
  /** The first bucket that made an instance wait for headroom. */
  waitingOn?: BudgetBlock;
  /** Instances no amount of waiting can admit (allowed 0, or an all-or-nothing start too large). */
  unsatisfiable: number;
  /** The first bucket that can never admit them. */
  unsatisfiableOn?: BudgetBlock;
}

/**
 * Which of `candidates` may start without any budget's bucket exceeding its allowed count. Greedy
 * in candidate order: an instance is admitted when every bucket selecting it has room (admitting
 * it uses one unit of each); an instance already held (e.g. by the starting resource itself) is
 * already counted and always admitted; an instance no budget selects is always admitted. At most
 * `limit` are admitted (later candidates are then not judged). With `allOrNothing`, either every
 * candidate is admitted or none, and a bucket whose allowed count is below the candidates it would
 * have to take at once is unsatisfiable. Pure.
 * @throws BudgetSpecError from {@link allowedUnavailable}.
 */
export function admitStarts(
  candidates: readonly string[],
  budgets: readonly BudgetView[],
  isHeld: (instanceId: string) => boolean,
  opts: { allOrNothing?: boolean; limit?: number } = {},
): Admission {
  const relevant = budgets.filter((b) => candidates.some((id) => b.instances.has(id)));
  const state = relevant.map((b) => {
    const buckets = new Map<string, BudgetBlock>();
    for (const u of budgetUsage(b, isHeld)) buckets.set(u.zoneId ?? '', { budget: b.name, ...u });
    return { b, buckets, used: new Map<string, number>() };
  });
  const out: Admission = { admitted: [], waiting: 0, unsatisfiable: 0 };
  const limit = opts.limit ?? Infinity;
  if (opts.allOrNothing) {
    // Unsatisfiable when a bucket could never take every not-yet-held candidate at once.
    for (const { b, buckets } of state) {
      const need = new Map<string, number>();
      for (const id of candidates) {
        const zone = b.instances.get(id);
        if (zone === undefined || isHeld(id)) continue;
        const key = bucketOf(b, zone);
        need.set(key, (need.get(key) ?? 0) + 1);
      }
      for (const [key, n] of need) {
        const bucket = buckets.get(key) as BudgetBlock;
        if (n > bucket.allowed) {
          out.unsatisfiable += n;
          out.unsatisfiableOn ??= bucket;
        }
      }
    }
    if (out.unsatisfiable > 0) return out;
  }
  for (const id of candidates) {
    if (out.admitted.length >= limit) break;
    if (isHeld(id)) {
      out.admitted.push(id);
      continue;
    }
    let blocked: { bucket: BudgetBlock; never: boolean } | undefined;
    const takes: Array<{ used: Map<string, number>; key: string }> = [];
    for (const { b, buckets, used } of state) {
      const zone = b.instances.get(id);
      if (zone === undefined) continue;
      const key = bucketOf(b, zone);
      const bucket = buckets.get(key) as BudgetBlock;
      if (bucket.allowed === 0) {
        blocked = { bucket, never: true };
        break;
      }
      if (bucket.unavailable + (used.get(key) ?? 0) + 1 > bucket.allowed)
        blocked ??= { bucket, never: false };
      takes.push({ used, key });
    }
    if (!blocked) {
      for (const t of takes) t.used.set(t.key, (t.used.get(t.key) ?? 0) + 1);
      out.admitted.push(id);
    } else if (blocked.never) {
      out.unsatisfiable += 1;
      out.unsatisfiableOn ??= blocked.bucket;
    } else {
      out.waiting += 1;
      out.waitingOn ??= blocked.bucket;
    }
  }
  if (opts.allOrNothing && out.admitted.length < candidates.length) {
    out.waiting += out.admitted.length;
    out.admitted = [];
  }
  return out;
}

/**
 * The lock keys held now (`held.has(key)`: e.g. the map of `InstanceLock.holders`) among the
 * instances of the bucket `block` (its budget's selection, its zone with perZone): what a waiter
 * on that bucket waits for.
 */
export function heldKeysOf(
  budgets: readonly BudgetView[],
  block: BudgetBlock,
  held: { has(key: string): boolean },
): string[] {
  const b = budgets.find((v) => v.name === block.budget);
  if (!b) return [];
  const out: string[] = [];
  for (const [id, zone] of b.instances) {
    if (block.zoneId !== undefined && zone !== block.zoneId) continue;
    const key = instanceLockKey(id);
    if (held.has(key)) out.push(key);
  }
  return out;
}

/**
 * `U/A unavailable[ in ZONE]` of one bucket (status messages: unavailable and allowed counts, the
 * zone with perZone, `an unknown zone` for instances without one).
 */
export function describeUsage(u: BucketUsage): string {
  const where = u.zoneId !== undefined ? ` in ${u.zoneId || 'an unknown zone'}` : '';
  return `${u.unavailable}/${u.allowed} unavailable${where}`;
}

/**
 * The status message of an admission that kept instances back, or undefined when none was.
 * Waiting: `N instance(s) wait for budget NAME: U/A unavailable in ZONE`; unsatisfiable:
 * `N instance(s) can never start under budget NAME: ... (maxUnavailable resolves to A)`.
 */
export function admissionMessage(a: Admission): string | undefined {
  const parts: string[] = [];
  const block = (b: BudgetBlock) => `budget ${b.budget}: ${describeUsage(b)}`;
  if (a.waitingOn) parts.push(`${a.waiting} instance(s) wait for ${block(a.waitingOn)}`);
  if (a.unsatisfiableOn) {
    const b = a.unsatisfiableOn;
    parts.push(
      `${a.unsatisfiable} instance(s) can never start under ${block(b)} (maxUnavailable allows ${b.allowed} of ${b.selected} selected${b.allowed > 0 ? ', fewer than must start at once' : ''})`,
    );
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/**
 * The budgets of one controller process: the InstanceDisruptionBudget informer cache (spec) and,
 * per budget UID, the selection its controller last resolved (instance → zone). A budget whose
 * selection was not resolved yet by this process selects nothing (a new budget protects from its
 * first reconcile on). Synchronous reads only: the start path calls {@link views} in the same turn
 * as the lock check.
 */
export class DisruptionBudgets {
  private objects: ObjectReader<InstanceDisruptionBudget> | undefined;
  private readonly selections = new Map<string, ReadonlyMap<string, string>>();
  private readonly listeners: Array<() => void> = [];

  /** The informer cache of InstanceDisruptionBudgets (the budget controller's registration sets it). */
  setSource(objects: ObjectReader<InstanceDisruptionBudget>): void {
    this.objects = objects;
  }

  /** Records what budget `uid` selects now (instance ID → zone ID). */
  record(uid: string, instances: ReadonlyMap<string, string>): void {
    this.selections.set(uid, instances);
  }

  /** Drops the selection of a budget that is gone. */
  forget(uid: string): void {
    this.selections.delete(uid);
  }

  /** Registers `listener`, called by {@link changed}. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Tells listeners that a budget's spec changed or it went away (resources Stalled
   * `BudgetUnsatisfiable` re-check).
   */
  changed(): void {
    for (const l of this.listeners) l();
  }

  /** Every cached budget (not being deleted) with a resolved selection, spec from the cache. */
  views(): BudgetView[] {
    const out: BudgetView[] = [];
    for (const b of this.objects?.list() ?? []) {
      if (b.metadata.deletionTimestamp) continue;
      const instances = this.selections.get(b.metadata.uid ?? '');
      if (!instances) continue;
      try {
        allowedUnavailable(b.spec.maxUnavailable, 0);
      } catch {
        continue; // its own controller reports it Stalled; admission rejects these anyway
      }
      out.push({
        name: b.metadata.name ?? '',
        maxUnavailable: b.spec.maxUnavailable,
        perZone: b.spec.perZone === true,
        instances,
      });
    }
    return out;
  }
}
