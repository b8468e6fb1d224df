/**
 * The region-wide change feed of the fleet view (issue 25, DESIGN §2): what touched package or
 * patch states since the last read, at the cost of pages of changes instead of one call per
 * instance.
 *
 * An OOS package-state record (and an instance's patch state) changes only when something writes
 * it: an OOS execution of a package (or patch baseline) template by any executor, or a direct
 * `UpdateInstancePackageState`. One refresh reads:
 * - OOS `ListExecutions` with `TemplateName` (a contains match: `ConfigureOOSPackage` catches every
 *   public variant and the per-instance child template), `IncludeChildExecution=true` and
 *   `StartDateAfter` = the last refresh's start minus {@link FEED_OVERLAP_MS}; then the same with
 *   `EndDateAfter`. An execution's instances come from its `instanceId` parameter (child
 *   executions, single-instance templates) or its `targets` parameter when that lists `ResourceIds`;
 *   a parent targeting by tags is covered by its children. An execution whose instances cannot be
 *   known at all marks every instance stale (the next readers re-read them).
 * - Where available, ActionTrail `LookupEvents` with `EventName` = the direct write's API name
 *   (`UpdateInstancePackageState`), `StartTime` = the last refresh minus
 *   {@link TRAIL_DELIVERY_MS} (ActionTrail makes an event queryable within 10 minutes). An access
 *   error (`permission` category) turns ActionTrail off for this process; the full resync then
 *   covers direct writes. Any other ActionTrail error keeps its window for the next lookup.
 *
 * Executions this process started (or that carry an owner it manages) are skipped: their outcomes
 * reach the view through the tracker (`recordPackageState`, `invalidate`). Each (execution, start
 * or end) and each event is handled once. Knows nothing of Kubernetes.
 */
import { LOOKUP_MAX_EVENTS } from './actiontrail.js';
import { CloudError } from './errors.js';
import type { ActionTrailApi, Execution, OosApi } from './types.js';

/** One kind of state the feed watches. */
export interface FeedSource {
  /** `packages` (OOS package states) or `patches` (patch states). */
  kind: 'packages' | 'patches';
  /** `ListExecutions` `TemplateName` filter (contains match). */
  templateFilter: string;
  /** API name of a direct write that leaves no execution, read from ActionTrail when available. */
  trailEventName?: string;
}

/** Package states: every package template execution, and direct `UpdateInstancePackageState`. */
export const PACKAGE_FEED: FeedSource = {
  kind: 'packages',
  templateFilter: 'ConfigureOOSPackage',
  trailEventName: 'UpdateInstancePackageState',
};
/** Patch states: patch baseline scans and installs (`ACS-ECS-BulkyApplyPatchBaseline` and its child template). */
export const PATCH_FEED: FeedSource = { kind: 'patches', templateFilter: 'ApplyPatchBaseline' };

/**
 * Overlap of consecutive listings, ms: execution dates have second resolution and the cloud's clock
 * may be a little off this process's. An execution listed twice is handled once.
 */
const FEED_OVERLAP_MS = 60_000;
/**
 * How late ActionTrail may make an event queryable, ms: "available for query within 10 minutes"
 * (https://help.aliyun.com/en/actiontrail/product-overview/limits). Each lookup re-reads this span;
 * events seen are handled once.
 */
const TRAIL_DELIVERY_MS = 10 * 60_000;

/** Options of {@link ChangeFeed}. */
export interface ChangeFeedOptions {
  source: FeedSource;
  /** An OOS client of the region for one refresh (carries its signal and owner). */
  oos(signal: AbortSignal): OosApi;
  /** An ActionTrail client of the region; absent: no ActionTrail. */
  actionTrail?(signal: AbortSignal): ActionTrailApi;
  /** This process's clock (ms): the view's stamps. */
  now(): number;
  /** The cloud's clock (ms) for the date filters. */
  cloudNow(): number;
  /** True when the execution's outcome reaches the view without the feed (this process's own work). */
  isOwn(e: Execution): boolean;
  /** Instances whose state changed; `atMs` = this process's clock when the change was known. */
  touched(instanceIds: readonly string[], atMs: number): void;
  /** A change whose instances cannot be known: every instance's state is stale as of `atMs`. */
  touchedAll(atMs: number): void;
  /** Counters of calls sent (shared with the fleet view's `reads`). */
  reads: { changeFeedListings: number; actionTrailLookups: number };
  /** A read of the execution listings (`executions`) or of ActionTrail succeeded; it started at `startedAtMs` (this clock). */
  onRead?(what: 'executions' | 'actiontrail', startedAtMs: number): void;
}

/** Handled (execution, phase) pairs and events are forgotten after this long, ms. */
const SEEN_RETAIN_MS = 2 * TRAIL_DELIVERY_MS + 2 * FEED_OVERLAP_MS;

/** One watched source of one region; see the module comment. */
export class ChangeFeed {
  /** When the last successful refresh started (this process's clock), ms. */
  readAtMs: number | undefined;
  /** Why ActionTrail is off after an access error (undefined: on, or never configured). */
  trailDisabled: string | undefined;
  /** The cloud-clock start of the last successful refresh, ms. */
  private cloudReadAtMs: number | undefined;
  private trailCloudReadAtMs: number | undefined;
  /** `executionId|start` / `executionId|end` / `trail|eventId` → when handled (this clock), ms. */
  private readonly seen = new Map<string, number>();
  /** Parent execution ID → own (see {@link ChangeFeedOptions.isOwn}), for their children. */
  private readonly parents = new Map<string, { own: boolean; atMs: number }>();
  private inflight: Promise<void> | undefined;

  constructor(private readonly opts: ChangeFeedOptions) {}

  /**
   * Refreshes the feed unless a refresh started no longer than `maxAgeMs` ago; concurrent callers
   * share one refresh (it runs with its own signal and is not aborted by callers).
   * @throws CloudError of the execution listings (an ActionTrail access error turns ActionTrail
   *   off; other ActionTrail errors leave its window for the next lookup).
   */
  async ensure(maxAgeMs: number): Promise<void> {
    if (this.readAtMs !== undefined && this.opts.now() - this.readAtMs <= maxAgeMs) return;
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
    await this.inflight;
  }

  private async refresh(): Promise<void> {
    const startedAt = this.opts.now();
    const cloudStart = this.opts.cloudNow();
    const signal = new AbortController().signal;
    const oos = this.opts.oos(signal);
    const since = isoSeconds((this.cloudReadAtMs ?? cloudStart) - FEED_OVERLAP_MS);
    const filter = { templateName: this.opts.source.templateFilter, includeChildExecution: true };
    this.opts.reads.changeFeedListings += 2;
    const [started, ended] = await Promise.all([
      oos.listAllExecutions({ ...filter, startDateAfter: since }),
      oos.listAllExecutions({ ...filter, endDateAfter: since }),
    ]);
    const trailIds = await this.readTrail(signal, cloudStart);
    const at = this.opts.now();
    const touched = new Set<string>(trailIds);
    let all = false;
    for (const e of [...started, ...ended]) {
      if (!e.parentExecutionId) this.parents.set(e.executionId, { own: this.opts.isOwn(e), atMs: at });
    }
    for (const [list, phase] of [
      [started, 'start'],
      [ended, 'end'],
    ] as const) {
      for (const e of list) {
        const key = `${e.executionId}|${phase}`;
        if (this.seen.has(key)) continue;
        if (phase === 'end' && !e.endDate) continue; // listed by an end filter before it ended
        this.seen.set(key, at);
        if (this.isOwn(e)) continue;
        const ids = instancesOf(e);
        if (ids) for (const id of ids) touched.add(id);
        // A parent without listed instances is covered by its children; at its end, one that
        // never had any (not a parent) touched instances nobody can name.
        else if (phase === 'end' && !e.isParent && !e.parentExecutionId) all = true;
      }
    }
    // Entries read before the first refresh's window (forced reads, PerInstance readers) were never
    // covered by the feed: stale once (a normal start reads after the first refresh: no cost).
    if (this.readAtMs === undefined) this.opts.touchedAll(startedAt - FEED_OVERLAP_MS);
    if (all) this.opts.touchedAll(at);
    if (touched.size > 0) this.opts.touched([...touched], at);
    this.cloudReadAtMs = cloudStart;
    this.readAtMs = startedAt;
    this.opts.onRead?.('executions', startedAt);
    for (const [k, t] of this.seen) if (at - t > SEEN_RETAIN_MS) this.seen.delete(k);
    for (const [k, p] of this.parents) if (at - p.atMs > SEEN_RETAIN_MS) this.parents.delete(k);
  }

  /** Own work: the execution, or for a child its parent, is this process's (see the options). */
  private isOwn(e: Execution): boolean {
    if (!e.parentExecutionId) return this.parents.get(e.executionId)?.own ?? this.opts.isOwn(e);
    const parent = this.parents.get(e.parentExecutionId);
    if (!parent) return false;
    parent.atMs = this.opts.now(); // a long execution keeps its parent known while children run
    return parent.own;
  }

  /** Instance IDs named by direct writes ActionTrail recorded since the last lookup (new events only). */
  private async readTrail(signal: AbortSignal, cloudStart: number): Promise<string[]> {
    const name = this.opts.source.trailEventName;
    if (!name || !this.opts.actionTrail || this.trailDisabled !== undefined) return [];
    const since = (this.trailCloudReadAtMs ?? cloudStart) - TRAIL_DELIVERY_MS - FEED_OVERLAP_MS;
    this.opts.reads.actionTrailLookups++;
    let events;
    try {
      events = await this.opts
        .actionTrail(signal)
        .lookupEvents({ eventName: name, startTime: isoSeconds(since) });
    } catch (err) {
      if (err instanceof CloudError && err.category === 'permission') {
        this.trailDisabled = `${err.code}: ${err.message}`;
        return [];
      }
      // ActionTrail is optional: a throttled or failed lookup leaves its window where it was (the
      // next lookup covers the gap) and does not fail the execution listings.
      return [];
    }
    this.trailCloudReadAtMs = cloudStart;
    const at = this.opts.now();
    this.opts.onRead?.('actiontrail', at);
    // The lookup stops at a page bound (newest first): older events of the window may be missing.
    if (events.length >= LOOKUP_MAX_EVENTS) this.opts.touchedAll(at);
    const ids: string[] = [];
    for (const ev of events) {
      const key = `trail|${ev.eventId}`;
      if (this.seen.has(key)) continue;
      this.seen.set(key, at);
      const named = ev.resourceNames.filter((n) => n.startsWith('i-'));
      const param = ev.requestParameters['InstanceId'];
      ids.push(...(named.length > 0 ? named : param ? [param] : []));
    }
    return ids;
  }
}

/**
 * The instances an execution operates on, from its parameters: `instanceId` (child executions,
 * single-instance templates) or `targets` with `Type: ResourceIds` (object or JSON string).
 * Undefined when the parameters do not name them (e.g. tag targets). The one reader of an
 * execution's instances: the feed's and the OOS tracker's (`executionBatch`).
 */
export function instancesOf(e: Execution): string[] | undefined {
  const p = e.parameters;
  const one = p['instanceId'] ?? p['InstanceId'];
  if (typeof one === 'string' && one) return [one];
  let targets = p['targets'] ?? p['Targets'];
  if (typeof targets === 'string') {
    try {
      targets = JSON.parse(targets) as unknown;
    } catch {
      return undefined;
    }
  }
  if (targets && typeof targets === 'object') {
    const ids = (targets as Record<string, unknown>)['ResourceIds'];
    if (Array.isArray(ids) && ids.every((x) => typeof x === 'string')) return ids;
  }
  return undefined;
}

/** ISO 8601 UTC without milliseconds (the format OOS and ActionTrail dates use). */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
