/**
 * Failure memory and round-based retry backoff shared by every kind that starts work in rounds.
 *
 * Which instances failed lives in `status.retry.failed` (grouped by execution and message), never
 * in the bounded display rows, so 150 or 5,000 failures are all counted and all wait for the
 * backoff after a restart. `status.retry.failures` counts ROUNDS that left instances failed (a
 * round is one `executionSequence`, however many batches it has), so a 20-batch round raises it
 * by exactly one.
 */
import { MAX_REMEMBERED_FAILURES, type FailureGroup, type RetryStatus } from '../../api/common.js';
import { toMetaTime } from '../../runtime/conditions.js';

/** One failed instance. */
export interface FailureRecord {
  message: string;
  executionId?: string;
  /** RFC 3339. */
  since: string;
  round?: number;
}

/** Backoff bounds, milliseconds. */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential retry delay: `baseMs * 2^(failures-1)`, capped at `maxMs`. @returns milliseconds.
 */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
}

/** Mutable failure memory of one resource for one reconcile; see the module comment. */
export class FailureLedger {
  private readonly failed = new Map<string, FailureRecord>();
  private omittedCount: number;
  private failures: number;
  private nextRetryTime?: string;
  private countedRound?: number;

  /**
   * @param retry `status.retry` as last written.
   * @param legacyFailed instance IDs shown Failed in rows of objects written before
   *   `retry.failed` existed (used only when `retry.failed` is absent).
   */
  constructor(
    retry: RetryStatus | undefined,
    legacyFailed: ReadonlyArray<{ instanceId: string } & Partial<FailureRecord>> = [],
  ) {
    this.failures = retry?.failures ?? 0;
    this.nextRetryTime = retry?.nextRetryTime;
    this.countedRound = retry?.countedRound;
    this.omittedCount = retry?.omitted ?? 0;
    if (retry?.failed) {
      for (const g of retry.failed) {
        for (const id of g.instanceIds) {
          this.failed.set(id, {
            message: g.message,
            since: g.since,
            ...(g.executionId !== undefined ? { executionId: g.executionId } : {}),
            ...(g.round !== undefined ? { round: g.round } : {}),
          });
        }
      }
    } else if (retry) {
      for (const r of legacyFailed) {
        this.failed.set(r.instanceId, {
          message: r.message ?? 'failed',
          since: r.since ?? retry.nextRetryTime ?? toMetaTime(new Date(0)),
          ...(r.executionId !== undefined ? { executionId: r.executionId } : {}),
        });
      }
    }
  }

  get size(): number {
    return this.failed.size;
  }

  /** Failed instances beyond the remembered bound. */
  get omitted(): number {
    return this.omittedCount;
  }

  has(instanceId: string): boolean {
    return this.failed.has(instanceId);
  }

  get(instanceId: string): FailureRecord | undefined {
    return this.failed.get(instanceId);
  }

  /** Failed instance IDs, sorted. */
  ids(): string[] {
    return [...this.failed.keys()].sort();
  }

  /** Records a failure (replacing an older one of the same instance). */
  fail(instanceId: string, rec: FailureRecord): void {
    if (!this.failed.has(instanceId) && this.failed.size >= MAX_REMEMBERED_FAILURES) {
      this.omittedCount += 1;
      return;
    }
    this.failed.set(instanceId, rec);
  }

  /** Forgets the failure of `instanceId` (it succeeded, or is no longer targeted). */
  clear(instanceId: string): void {
    this.failed.delete(instanceId);
  }

  /** Forgets failures of instances not in `targeted` (released or untagged instances). */
  retain(targeted: ReadonlySet<string>): void {
    for (const id of [...this.failed.keys()]) if (!targeted.has(id)) this.failed.delete(id);
  }

  /** True while failed instances must wait (now before `nextRetryTime`). */
  inBackoff(now: Date): boolean {
    return (
      this.nextRetryTime !== undefined &&
      this.failed.size > 0 &&
      Date.parse(this.nextRetryTime) > now.getTime()
    );
  }

  /** When failed instances are retried (RFC 3339), if any are waiting. */
  get retryAt(): string | undefined {
    return this.failed.size > 0 ? this.nextRetryTime : undefined;
  }

  /**
   * Called when every execution of `round` has finished. If the round left failures and was not
   * counted yet, `failures` rises by one and `nextRetryTime` moves to now + backoff. A round without
   * failures that leaves nothing failed resets the backoff.
   */
  completeRound(round: number, now: Date, backoff: BackoffOptions): void {
    const failedInRound = [...this.failed.values()].some((r) => r.round === round);
    if (failedInRound) {
      if (this.countedRound === round) return;
      this.failures += 1;
      this.countedRound = round;
      const delay = retryDelayMs(this.failures, backoff.baseMs, backoff.maxMs);
      this.nextRetryTime = toMetaTime(new Date(now.getTime() + delay));
    } else if (this.failed.size === 0) {
      this.failures = 0;
      this.nextRetryTime = undefined;
      this.countedRound = undefined;
      this.omittedCount = 0;
    }
  }

  /** `status.retry`, or undefined when nothing is failed. Groups by (execution, message, round). */
  toStatus(): RetryStatus | undefined {
    if (this.failed.size === 0 && this.omittedCount === 0) return undefined;
    const groups = new Map<string, FailureGroup>();
    for (const id of this.ids()) {
      const r = this.failed.get(id) as FailureRecord;
      const key = JSON.stringify([r.executionId ?? '', r.message, r.round ?? -1]);
      let g = groups.get(key);
      if (!g) {
        g = {
          ...(r.executionId !== undefined ? { executionId: r.executionId } : {}),
          message: r.message.slice(0, 512),
          since: r.since,
          ...(r.round !== undefined ? { round: r.round } : {}),
          instanceIds: [],
        };
        groups.set(key, g);
      }
      if (r.since < g.since) g.since = r.since;
      g.instanceIds.push(id);
    }
    const status: RetryStatus = { failures: this.failures };
    if (this.nextRetryTime !== undefined) status.nextRetryTime = this.nextRetryTime;
    if (this.countedRound !== undefined) status.countedRound = this.countedRound;
    if (groups.size > 0) status.failed = [...groups.values()];
    if (this.omittedCount > 0) status.omitted = this.omittedCount;
    return status;
  }
}
