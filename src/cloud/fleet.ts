/**
 * The per-region fleet view (DESIGN §2): one shared, single-flight, age-bounded read of what every
 * resource of every kind needs to know about instances, so N resources over the same instances
 * cost one read, not N. Knows nothing of Kubernetes.
 *
 * - **Package states**: one OOS `ListInstancePackageStates` of an instance (all packages, no
 *   `TemplateNames` filter) serves every resource and every package on it. Readers ask for
 *   "these instances, no older than `maxAgeMs`"; concurrent requests for one instance share one
 *   call; execution results update the view ({@link RegionFleet.recordPackageState}) instead of a
 *   re-read.
 * - **Patch states**: OOS `ListInstancePatchStates` per instance (read in chunks of 100), shared
 *   by every PatchPolicy over the instance, no older than the reader's `maxAgeMs`.
 * - **Instances**: ECS `DescribeInstances` by ID and `DescribeCloudAssistantStatus`, batched across
 *   every resource reading within a few milliseconds, no older than the reader's `maxAgeMs`.
 * - **Tag selectors**: one paged ECS `DescribeInstances` by tag KEY (`Tag.1.Key`, no value: every
 *   instance carrying the key) per key, shared by every selector whose first filter has that key
 *   (values and further tags are matched here), no older than the reader's `maxAgeMs`. A key whose
 *   listing reaches the documented 1,000-resource limit of tag filters is served from one paged
 *   listing of the whole region instead. Tags this process writes are recorded in the view
 *   ({@link RegionFleet.recordTags}), so readers see their own writes.
 * - **Templates**: OOS `GetTemplate` cached per (name, version) for a TTL; single-flight.
 * - **Running executions**: one region-wide OOS `ListExecutions` listing per owner kind (by the
 *   `ecsops.io/owner-kind` tag and status, all pages), shared by every resource's poll (status
 *   `Running`: 100 running executions cost one call) and adoption (every active status) for
 *   `maxAgeMs`.
 *
 * Only compact records are kept (no SDK response objects). A shared read runs with its own
 * AbortController, aborted only when every reader waiting for it has aborted.
 */
import { ChangeFeed, isoSeconds, PACKAGE_FEED, PATCH_FEED, type FeedSource } from './change-feed.js';
import { CloudError } from './errors.js';
import { TERMINAL_EXECUTION_STATUSES } from './types.js';
import type {
  ActionTrailApi,
  EcsApi,
  Execution,
  Instance,
  InstancePatchState,
  OosApi,
  PackageState,
  TagFilter,
  TemplateDetail,
} from './types.js';

/** Options of a client view: abort signal, fairness owner and lowest priority (see limiter.ts). */
export interface ClientOptions {
  signal?: AbortSignal;
  owner?: string;
  minPriority?: number;
}

/** The client options of a shared read started for a reader with options `o`. */
function sharedView(signal: AbortSignal, o: ClientOptions): ClientOptions {
  return {
    signal,
    ...(o.owner !== undefined ? { owner: o.owner } : {}),
    ...(o.minPriority !== undefined ? { minPriority: o.minPriority } : {}),
  };
}

/**
 * How package and patch states are kept fresh: `ChangeFeed` (default) re-reads an instance only
 * when the region's change feed saw it touched, when it is unknown, or when its last read is older
 * than the full-resync period; `PerInstance` re-reads every instance older than `maxAgeMs`.
 */
export type DriftDetection = 'ChangeFeed' | 'PerInstance';

/** Default {@link RegionFleetOptions.fullResyncMs}: 10 hours (controller-runtime's default SyncPeriod). */
export const DEFAULT_FULL_RESYNC_MS = 10 * 3_600_000;

/** Per-read options. */
export interface ReadOptions extends ClientOptions {
  /** Data read longer ago than this (ms) is re-read; 0 forces a read. */
  maxAgeMs: number;
  /** Package and patch state reads: see {@link DriftDetection}. Default `ChangeFeed`. */
  driftDetection?: DriftDetection;
}

interface Stamped<T> {
  value: T;
  readAtMs: number;
}

/** OOS execution statuses in which work may still start or run. */
export const ACTIVE_EXECUTION_STATUSES = ['Started', 'Queued', 'Running', 'Waiting'] as const;

/**
 * Single-flight with reference-counted cancellation: concurrent `run(key)` calls share one
 * promise; the shared work's signal aborts only when every caller's signal has aborted.
 */
class SingleFlight<T> {
  private readonly inflight = new Map<
    string,
    { promise: Promise<T>; waiters: number; ac: AbortController }
  >();

  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let entry = this.inflight.get(key);
    if (!entry) {
      const ac = new AbortController();
      const promise = work(ac.signal).finally(() => {
        if (this.inflight.get(key)?.promise === promise) this.inflight.delete(key);
      });
      promise.catch(() => undefined);
      entry = { promise, waiters: 0, ac };
      this.inflight.set(key, entry);
    }
    const e = entry;
    e.waiters++;
    if (!signal) return e.promise;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        e.waiters--;
        if (e.waiters <= 0) e.ac.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      e.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }
}

/** An instance as the fleet view knows it: ECS record plus Cloud Assistant agent state. */
export interface InstanceView {
  instance: Instance;
  /** Cloud Assistant agent online (heartbeat within 2 minutes); undefined when not Running. */
  online?: boolean;
}

/**
 * How long requests for instance reads are collected into one batch, ms: a first reconcile waits
 * this much longer, and many resources reconciling at once share one `DescribeInstances`.
 */
const INSTANCE_BATCH_WINDOW_MS = 100;
/** A batch this large is read at once (`DescribeInstances` takes 100 IDs per call). */
const INSTANCE_BATCH_FULL = 100;

/** Options of {@link RegionFleet}. */
export interface RegionFleetOptions {
  /** An OOS client of the region whose calls carry `opts` (signal, owner). */
  oos(opts: ClientOptions): OosApi;
  /** An ECS client of the region (instance reads). Without it {@link RegionFleet.instances} throws. */
  ecs?(opts: ClientOptions): EcsApi;
  /** Template cache TTL, ms. Default 5 minutes. */
  templateTtlMs?: number;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /**
   * How long what the view knows of an instance (package states, patch state, ECS record) and of
   * an owner (adoption checks) is kept after the last reader asked for it, ms. Default
   * {@link FLEET_RETAIN_MS}: longer than the longest `spec.interval` (24 h), so an instance any
   * resource targets is never evicted — only instances no resource asks for any more (released,
   * untargeted) are.
   */
  retainMs?: number;
  /** The full-resync period of change-feed reads, ms. Default {@link DEFAULT_FULL_RESYNC_MS}. */
  fullResyncMs?: number;
  /** An ActionTrail client of the region; absent: direct `UpdateInstancePackageState` calls are seen by the full resync only. */
  actionTrail?(opts: ClientOptions): ActionTrailApi;
  /** The cloud's clock for the feed's date filters, ms since the epoch. Default `Date.now`. */
  cloudNow?: () => number;
  /**
   * The OOS tag whose value names an execution's owner (e.g. `ecsops.io/owner-uid`): executions of
   * owners this view manages are this process's work, skipped by the change feed.
   */
  ownerTagKey?: string;
  /**
   * A change-feed read succeeded (for the feed-age metric): `feed` is `packages` / `patches` (the
   * execution listings) or `actiontrail`; `startedAtMs` is on the view's clock.
   */
  onFeedRead?(feed: 'packages' | 'patches' | 'actiontrail', startedAtMs: number): void;
}

/** Default {@link RegionFleetOptions.retainMs}: 25 hours. */
export const FLEET_RETAIN_MS = 25 * 3_600_000;
/** Eviction sweeps run at most this often (ms of the view's clock), from the reads themselves. */
const EVICT_SWEEP_MS = 60_000;

/** The fleet view of one region; see the module comment. */
export class RegionFleet {
  private readonly packages = new Map<string, Stamped<PackageState[]>>();
  private readonly packageReads = new SingleFlight<PackageState[]>();
  private readonly patches = new Map<string, Stamped<InstancePatchState | undefined>>();
  private readonly instanceViews = new Map<string, Stamped<InstanceView | undefined>>();
  /**
   * Per tag key ('' = the whole region): the instances carrying it, when that listing was read,
   * when a reader last asked for it (ms), and whether it reached {@link TAG_FILTER_LIMIT}.
   */
  private readonly keyListings = new Map<string, KeyListing>();
  private readonly keyReads = new SingleFlight<KeyListing>();
  /** The listing in flight per tag key (see {@link keyListing}). */
  private readonly keyRefresh = new Map<string, { gen: number; startedAtMs: number; done: Promise<void> }>();
  private keyGen = 0;
  /** Tags this process wrote per instance (undefined: removed) and when (ms): see {@link recordTags}. */
  private readonly tagWrites = new Map<string, { tags: Record<string, string | undefined>; atMs: number }>();
  /** True while a batch read of instances is in flight (the next batch waits for it). */
  private batchInFlight = false;
  /** Instance IDs requested for the next batch read, and the readers waiting for it. */
  private batch:
    | {
        /** Instance ID → a record a reader supplied (only its Cloud Assistant state is read). */
        ids: Map<string, Instance | undefined>;
        waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
        timer?: ReturnType<typeof setTimeout>;
        /** The window since the batch's first request has passed: read it as soon as none is in flight. */
        due?: boolean;
      }
    | undefined;
  private readonly patchReads = new SingleFlight<InstancePatchState[]>();
  private readonly templates = new Map<string, Stamped<TemplateDetail>>();
  private readonly templateReads = new SingleFlight<TemplateDetail>();
  private readonly listings = new Map<string, Stamped<Execution[]>>();
  private readonly listingReads = new SingleFlight<Execution[]>();
  /** Per owner-kind tag: running executions of the last refresh, and recently finished ones. */
  private readonly execStates = new Map<string, ExecutionStates>();
  private readonly execStateReads = new SingleFlight<{
    byId: ReadonlyMap<string, Execution>;
    readAtMs: number;
  }>();
  /** The refresh of execution states in flight per tag (see {@link executionStates}). */
  private readonly execRefresh = new Map<
    string,
    { gen: number; startedAtMs: number; ended: boolean; done: Promise<void> }
  >();
  private readonly finishedListeners = new Set<(finished: readonly Execution[]) => void>();
  private execGen = 0;
  /**
   * Per owner, executions this process started that no adoption check or status has confirmed
   * yet (see {@link adoptionNeeded}): execution ID → start time (ms). An adoption listing must be
   * read after the newest of them.
   */
  private readonly unconfirmed = new Map<string, Map<string, number>>();
  /** When each owner was last checked for untracked work (see {@link adoptionNeeded}), ms. */
  private readonly adoptionChecked = new Map<string, number>();
  /** When a reader last asked for each instance (ms): what eviction goes by. */
  private readonly asked = new Map<string, number>();
  /** The region's change feed per state kind (see change-feed.ts). */
  private readonly feeds: Record<StateKind, ChangeFeed>;
  /**
   * Per state kind, instance → when the feed learnt it changed (ms): a read that started earlier
   * may have seen the state before the change and is not kept.
   */
  private readonly touchedAt: Record<StateKind, Map<string, number>> = {
    packages: new Map(),
    patches: new Map(),
  };
  /** Per state kind: entries read before this time (ms) are stale (a change nobody can name). */
  private readonly staleBefore: Record<StateKind, number> = { packages: -Infinity, patches: -Infinity };
  /** Executions this process started (ID or ClientToken) → when noted (ms): the feed skips them. */
  private readonly ownExecutions = new Map<string, number>();
  private readonly fullResyncMs: number;
  private lastSweepMs: number;
  private readonly retainMs: number;
  private readonly now: () => number;
  private readonly templateTtlMs: number;
  /** Reads actually sent, by kind (for tests and benchmarks). */
  readonly reads = {
    packageStates: 0,
    patchStates: 0,
    templates: 0,
    executionListings: 0,
    instanceBatches: 0,
    tagListings: 0,
    changeFeedListings: 0,
    actionTrailLookups: 0,
  };

  constructor(private readonly opts: RegionFleetOptions) {
    this.now = opts.now ?? Date.now;
    this.templateTtlMs = opts.templateTtlMs ?? 5 * 60_000;
    this.retainMs = opts.retainMs ?? FLEET_RETAIN_MS;
    this.lastSweepMs = this.now();
    this.fullResyncMs = opts.fullResyncMs ?? DEFAULT_FULL_RESYNC_MS;
    const feed = (source: FeedSource): ChangeFeed => {
      const kind = source.kind;
      const trail = opts.actionTrail;
      return new ChangeFeed({
        source,
        oos: (signal) => opts.oos({ signal, owner: 'fleet-view' }),
        ...(trail ? { actionTrail: (signal: AbortSignal) => trail({ signal, owner: 'fleet-view' }) } : {}),
        now: this.now,
        cloudNow: opts.cloudNow ?? Date.now,
        isOwn: (e) => this.isOwnExecution(e),
        touched: (ids, at) => {
          const map = kind === 'packages' ? this.packages : this.patches;
          for (const id of ids) {
            map.delete(id);
            this.touchedAt[kind].set(id, at);
          }
        },
        touchedAll: (at) => {
          this.staleBefore[kind] = Math.max(this.staleBefore[kind], at);
        },
        reads: this.reads,
        onRead: (what, at) => opts.onFeedRead?.(what === 'actiontrail' ? 'actiontrail' : kind, at),
      });
    };
    this.feeds = { packages: feed(PACKAGE_FEED), patches: feed(PATCH_FEED) };
  }

  /**
   * True when `e` is this process's work: started by it (noted with {@link noteStarted}), or tagged
   * with an owner it manages (`opts.ownerTagKey`; an owner is managed once it was checked for
   * adoption). Its outcome reaches the view through the tracker, so the feed skips it.
   */
  private isOwnExecution(e: Execution): boolean {
    if (this.ownExecutions.has(e.executionId)) return true;
    const key = this.opts.ownerTagKey;
    const owner = key === undefined ? undefined : e.tags[key];
    return owner !== undefined && (this.adoptionChecked.has(owner) || this.unconfirmed.has(owner));
  }

  /**
   * True when `hit` (read at `hit.readAtMs`) still answers a `kind` read of `id` with options `o`:
   * `PerInstance` — read within `o.maxAgeMs`; `ChangeFeed` — the feed (refreshed by the caller)
   * saw no change of it, nothing stale is pending, and its last read is within the full-resync
   * period (spread per instance over its last quarter, so a fleet read at once is not re-read at once).
   */
  private answers(kind: StateKind, id: string, readAtMs: number, now: number, o: ReadOptions): boolean {
    if (o.maxAgeMs <= 0) return false;
    if ((o.driftDetection ?? 'ChangeFeed') === 'PerInstance') return now - readAtMs <= o.maxAgeMs;
    if (readAtMs < this.staleBefore[kind]) return false;
    return now - readAtMs <= this.fullResyncMs * resyncSpread(id);
  }

  /** Refreshes `kind`'s change feed when a `ChangeFeed` read needs it (older than `o.maxAgeMs`). */
  private async feedFor(kind: StateKind, o: ReadOptions): Promise<void> {
    if (o.maxAgeMs <= 0 || (o.driftDetection ?? 'ChangeFeed') === 'PerInstance') return;
    await this.feeds[kind].ensure(o.maxAgeMs);
  }

  /** Stores a `kind` state read that started at `started` unless the feed saw a change after that. */
  private keep(kind: StateKind, id: string, started: number): boolean {
    const changed = this.touchedAt[kind].get(id);
    if (changed !== undefined && changed > started) return false;
    this.touchedAt[kind].delete(id);
    return true;
  }

  /** Why the feed stopped reading ActionTrail (an access error), or undefined. */
  get actionTrailDisabled(): string | undefined {
    return this.feeds.packages.trailDisabled;
  }

  /** Sizes of the per-instance and per-owner maps (for tests and the memory benchmark). */
  get sizes(): Record<string, number> {
    return {
      packages: this.packages.size,
      patches: this.patches.size,
      instanceViews: this.instanceViews.size,
      asked: this.asked.size,
      adoptionChecked: this.adoptionChecked.size,
      unconfirmed: this.unconfirmed.size,
      ownExecutions: this.ownExecutions.size,
      touched: this.touchedAt.packages.size + this.touchedAt.patches.size,
    };
  }

  /** Notes that readers asked for `ids` now; sweeps what nobody asked for within `retainMs`. */
  private touch(ids: readonly string[], now: number): void {
    for (const id of ids) this.asked.set(id, now);
    if (now - this.lastSweepMs < EVICT_SWEEP_MS) return;
    this.lastSweepMs = now;
    const before = now - this.retainMs;
    for (const [id, at] of this.asked) {
      if (at >= before) continue;
      this.asked.delete(id);
      this.packages.delete(id);
      this.patches.delete(id);
      this.instanceViews.delete(id);
    }
    for (const [id, at] of this.ownExecutions) if (at < before) this.ownExecutions.delete(id);
    for (const m of Object.values(this.touchedAt)) for (const [id, at] of m) if (at < before) m.delete(id);
    // An owner checked long ago is checked again if it still exists (one listing, harmless).
    for (const [owner, at] of this.adoptionChecked) if (at < before) this.adoptionChecked.delete(owner);
    for (const [owner, pending] of this.unconfirmed) {
      for (const [id, at] of pending) if (at < before) pending.delete(id);
      if (pending.size === 0) this.unconfirmed.delete(owner);
    }
  }

  /**
   * The package states of each instance in `instanceIds` (every package on it), read no longer
   * than `o.maxAgeMs` ago. Instances read recently by any resource are served from the view; the
   * rest are read with OOS `ListInstancePackageStates` (one call per instance: the API takes one
   * ID), sharing in-flight reads.
   * @returns instance ID → package states (empty array: nothing installed).
   * @throws CloudError of the first failed read (the others still land in the view).
   */
  async packageStates(instanceIds: readonly string[], o: ReadOptions): Promise<Map<string, PackageState[]>> {
    const out = new Map<string, PackageState[]>();
    await this.feedFor('packages', o);
    const now = this.now();
    this.touch(instanceIds, now);
    const todo: string[] = [];
    for (const id of instanceIds) {
      const hit = this.packages.get(id);
      if (hit && this.answers('packages', id, hit.readAtMs, now, o)) out.set(id, hit.value);
      else todo.push(id);
    }
    const read = await Promise.allSettled(
      todo.map((id) =>
        this.packageReads.run(
          // A reader after a change the feed reported never joins a read that started before it.
          `${id}|${o.maxAgeMs > 0 ? 'any' : now}|${this.touchedAt.packages.get(id) ?? ''}`,
          async (signal) => {
            this.reads.packageStates++;
            const started = this.now();
            const states = await this.opts.oos(sharedView(signal, o)).listInstancePackageStates(id);
            const compact = states.map(compactState);
            const prev = this.packages.get(id);
            // A result recorded (by an execution outcome) after this read started wins; a change
            // the feed saw after it started makes it stale.
            if ((!prev || prev.readAtMs <= started) && this.keep('packages', id, started))
              this.packages.set(id, { value: compact, readAtMs: started });
            return this.packages.get(id)?.value ?? compact;
          },
          o.signal,
        ),
      ),
    );
    let firstError: unknown;
    for (const [i, r] of read.entries()) {
      if (r.status === 'fulfilled') out.set(todo[i] as string, r.value);
      else firstError ??= r.reason;
    }
    if (firstError !== undefined) throw firstError;
    return out;
  }

  /**
   * Records what an execution just did to `templateName` on `instanceId` (`state` undefined:
   * uninstalled) in the instance's entry. The entry keeps the time of its last read: the other
   * packages' states are no fresher than they were.
   */
  recordPackageState(instanceId: string, templateName: string, state: PackageState | undefined): void {
    const prev = this.packages.get(instanceId);
    if (!prev) return; // nothing known about the other packages: leave it to the next read
    const others = prev.value.filter((s) => s.templateName !== templateName);
    // The other packages were not read again: the entry keeps the age of the last read.
    this.packages.set(instanceId, {
      value: state ? [...others, compactState(state)] : others,
      readAtMs: prev.readAtMs,
    });
  }

  /** Forgets what the view knows about `instanceId` (e.g. its execution failed): the next reader re-reads it. */
  invalidate(instanceId: string): void {
    this.packages.delete(instanceId);
  }

  /**
   * The patch state (OOS `ListInstancePatchStates` counts) of each instance in `instanceIds`, read
   * no longer than `o.maxAgeMs` ago; the rest are read in chunks of 100 (the API's limit), sharing
   * in-flight reads. An instance OOS reports nothing for (never scanned) maps to undefined.
   * @throws CloudError.
   */
  async patchStates(
    instanceIds: readonly string[],
    o: ReadOptions,
  ): Promise<Map<string, InstancePatchState | undefined>> {
    const out = new Map<string, InstancePatchState | undefined>();
    await this.feedFor('patches', o);
    const now = this.now();
    this.touch(instanceIds, now);
    const todo: string[] = [];
    for (const id of instanceIds) {
      const hit = this.patches.get(id);
      if (hit && this.answers('patches', id, hit.readAtMs, now, o)) out.set(id, hit.value);
      else todo.push(id);
    }
    const chunks: string[][] = [];
    for (let i = 0; i < todo.length; i += 100) chunks.push(todo.slice(i, i + 100));
    const read = await Promise.all(
      chunks.map((chunk) =>
        this.patchReads.run(
          `${chunk.join(',')}|${o.maxAgeMs > 0 ? 'any' : now}|${Math.max(
            -1,
            ...chunk.map((id) => this.touchedAt.patches.get(id) ?? -1),
          )}`,
          async (signal) => {
            this.reads.patchStates++;
            const started = this.now();
            const states = await this.opts.oos(sharedView(signal, o)).listInstancePatchStates(chunk);
            const byId = new Map(states.map((st) => [st.instanceId, st]));
            for (const id of chunk)
              if (this.keep('patches', id, started))
                this.patches.set(id, { value: byId.get(id), readAtMs: started });
            return states;
          },
          o.signal,
        ),
      ),
    );
    // A read the feed made stale still answers this reader (it saw the state at its start).
    for (const [i, chunk] of chunks.entries()) {
      const states = read[i] ?? [];
      const byId = new Map(states.map((st) => [st.instanceId, st]));
      for (const id of chunk) out.set(id, this.patches.get(id)?.value ?? byId.get(id));
    }
    return out;
  }

  /**
   * ECS record and Cloud Assistant state of each instance in `instanceIds`, read no longer than
   * `o.maxAgeMs` ago. Requests of every resource arriving within a few milliseconds, or while the
   * previous batch read is in flight (one at a time per region), are served by one batched read:
   * ECS `DescribeInstances` by ID (100 per call) and `DescribeCloudAssistantStatus` for the Running
   * ones (50 per call), instead of one pair of calls per resource. Records the caller just read
   * (`known`, e.g. from {@link taggedInstances}) are not read again: only their Cloud Assistant
   * state is. An instance ECS does not return maps to undefined (released, or another region).
   * @throws CloudError of the batch read.
   */
  async instances(
    instanceIds: readonly string[],
    o: ReadOptions,
    known?: ReadonlyMap<string, Instance>,
  ): Promise<Map<string, InstanceView | undefined>> {
    const now = this.now();
    this.touch(instanceIds, now);
    const todo = instanceIds.filter((id) => {
      const hit = this.instanceViews.get(id);
      return !(hit && o.maxAgeMs > 0 && now - hit.readAtMs <= o.maxAgeMs);
    });
    if (todo.length > 0) {
      const done = new Promise<void>((resolve, reject) => {
        if (!this.batch) {
          // Every batch collects for the window (while a read is in flight too: the end of that
          // read flushes the next batch only once its window has passed), so batches stay large
          // when many resources reconcile at once.
          const batch: NonNullable<RegionFleet['batch']> = { ids: new Map(), waiters: [] };
          batch.timer = setTimeout(() => {
            batch.due = true;
            void this.flushInstances();
          }, INSTANCE_BATCH_WINDOW_MS);
          this.batch = batch;
        }
        // A record a reader just read (from a tag listing) serves every reader of the batch.
        for (const id of todo) if (!this.batch.ids.get(id)) this.batch.ids.set(id, known?.get(id));
        this.batch.waiters.push({ resolve, reject });
        if (this.batch.ids.size >= INSTANCE_BATCH_FULL) void this.flushInstances();
      });
      if (o.signal) {
        const signal = o.signal;
        let onAbort: (() => void) | undefined;
        try {
          await Promise.race([
            done,
            new Promise<never>((_resolve, reject) => {
              if (signal.aborted) reject(signal.reason);
              onAbort = () => reject(signal.reason);
              signal.addEventListener('abort', onAbort, { once: true });
            }),
          ]);
        } finally {
          // The signal is often the controller-wide one: a listener left on it per read leaks.
          if (onAbort) signal.removeEventListener('abort', onAbort);
        }
      } else await done;
    }
    return new Map(instanceIds.map((id) => [id, this.instanceViews.get(id)?.value]));
  }

  /**
   * Cloud Assistant state of the Running instances among `found`. One released since it was listed
   * (a tag listing is up to a minute old) makes ECS answer `InvalidInstanceIds.NotFound` for the
   * whole call: then the records are read again by ID (a released instance is no longer returned,
   * so it is gone for every reader) and the call is repeated for the ones still there, so one
   * instance leaving the fleet never fails the other readers of the batch.
   * @returns the records still there, and instance ID → online.
   * @throws CloudError of the reads (a second NotFound included).
   */
  private async cloudAssistantStates(
    ecs: EcsApi,
    found: Instance[],
  ): Promise<{ records: Instance[]; online: Map<string, boolean> }> {
    const runningOf = (list: Instance[]) =>
      list.filter((i) => i.status === 'Running').map((i) => i.instanceId);
    const read = async (ids: string[]) =>
      new Map(
        (ids.length > 0 ? await ecs.describeCloudAssistantStatus(ids) : []).map((c) => [
          c.instanceId,
          c.online,
        ]),
      );
    try {
      return { records: found, online: await read(runningOf(found)) };
    } catch (err) {
      if (!(err instanceof CloudError) || err.code !== 'InvalidInstanceIds.NotFound') throw err;
      const running = new Set(runningOf(found));
      const fresh = await ecs.describeInstances({ instanceIds: [...running] });
      const records = [...found.filter((i) => !running.has(i.instanceId)), ...fresh];
      return { records, online: await read(runningOf(fresh)) };
    }
  }

  /** Reads the collected batch of instances (see {@link instances}) and wakes its readers. */
  private async flushInstances(): Promise<void> {
    const batch = this.batch;
    if (!batch || this.batchInFlight) return; // the read in flight flushes this batch when it ends
    this.batch = undefined;
    clearTimeout(batch.timer);
    this.batchInFlight = true;
    const ids = [...batch.ids.keys()];
    try {
      if (!this.opts.ecs) throw new Error('fleet view built without an ECS client');
      this.reads.instanceBatches++;
      const ecs = this.opts.ecs({ owner: 'fleet-view' });
      const started = this.now();
      // A supplied record (from a tag listing) may predate this process's latest tag writes.
      const supplied = [...batch.ids.values()]
        .filter((i): i is Instance => i !== undefined)
        .map((i) => this.withWrites(i));
      const unknown = ids.filter((id) => !batch.ids.get(id));
      const found = [
        ...supplied,
        ...(unknown.length > 0 ? await ecs.describeInstances({ instanceIds: unknown }) : []),
      ];
      const { records, online } = await this.cloudAssistantStates(ecs, found);
      const byId = new Map(records.map((i) => [i.instanceId, this.withWrites(i, started)]));
      for (const id of ids) {
        const instance = byId.get(id);
        this.instanceViews.set(id, {
          value: instance
            ? { instance, ...(instance.status === 'Running' ? { online: online.get(id) ?? false } : {}) }
            : undefined,
          readAtMs: started,
        });
      }
      for (const w of batch.waiters) w.resolve();
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    } finally {
      this.batchInFlight = false;
      const next = this.batch as RegionFleet['batch']; // collected while this read was in flight
      if (next && (next.due || next.ids.size >= INSTANCE_BATCH_FULL)) void this.flushInstances();
    }
  }

  /**
   * The instances carrying every tag of `tags` (a filter without a value matches any value of its
   * key), from the listing of the FIRST filter's key read no longer than `o.maxAgeMs` ago: one
   * paged ECS `DescribeInstances` with `Tag.1.Key` only (every instance carrying the key, whatever
   * its value), shared single-flight by every selector of that key of every resource and kind; the
   * values and the other filters are matched here. So N resources with selectors of one key cost
   * one listing per age bound, not one per selector. A forced read (`maxAgeMs` 0: a new generation,
   * a requested reconcile) reads the key's listing now, and that listing then serves every reader.
   * ECS returns at most {@link TAG_FILTER_LIMIT} resources for a tag filter: a key whose listing
   * reaches that size is served from one paged listing of the whole region (no filter, no limit)
   * until a region listing shows the key below the limit again.
   * @throws Error when `tags` is empty (never "the whole region"); CloudError of the listing.
   */
  async taggedInstances(tags: readonly TagFilter[], o: ReadOptions): Promise<Instance[]> {
    const first = tags[0];
    if (!first) throw new Error('taggedInstances needs at least one tag filter');
    const listing = await this.keyListing(first.key, o);
    const list = listing.capped ? (await this.keyListing('', o)).value : listing.value;
    return list.filter((i) => hasTags(i, tags));
  }

  /**
   * The listing of tag key `key` ('' = every instance of the region) read no longer than
   * `o.maxAgeMs` ago; with `maxAgeMs` 0, one that started at or after this call. One listing runs
   * at a time per key: readers it does not satisfy (forced reads arriving while it runs) share the
   * next one, so N new objects reconciling at once cost a few listings, not N.
   */
  private async keyListing(key: string, o: ReadOptions): Promise<KeyListing> {
    const now = this.now();
    for (const [k, v] of this.keyListings)
      if (now - v.askedAtMs > TAG_LISTING_RETAIN_MS) this.keyListings.delete(k);
    const need = now - Math.max(0, o.maxAgeMs);
    for (;;) {
      const hit = this.keyListings.get(key);
      if (hit) {
        hit.askedAtMs = now;
        // A capped key is served from the region listing (which the caller reads with `o`).
        if (hit.capped || hit.readAtMs >= need) return hit;
      }
      const cur = this.keyRefresh.get(key);
      if (!cur || cur.startedAtMs >= need)
        return this.keyReads.run(
          `${key}|${cur?.gen ?? ++this.keyGen}`,
          (signal) => this.listKey(key, signal, o, now),
          o.signal,
        );
      // The listing in flight started before this reader's bound: wait for it, then share the next.
      await cur.done;
      if (o.signal?.aborted) throw o.signal.reason;
    }
  }

  /** One listing of {@link keyListing} (registered in `keyRefresh` while it runs). */
  private async listKey(
    key: string,
    signal: AbortSignal,
    o: ClientOptions,
    askedAtMs: number,
  ): Promise<KeyListing> {
    const started = this.now();
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    this.keyRefresh.set(key, { gen: this.keyGen, startedAtMs: started, done });
    try {
      if (!this.opts.ecs) throw new Error('fleet view built without an ECS client');
      this.reads.tagListings++;
      const list = await this.opts
        .ecs(sharedView(signal, o))
        .describeInstances(key === '' ? {} : { tags: [{ key }] });
      const entry: KeyListing = {
        value: list.map((i) => this.withWrites(i, started)),
        readAtMs: started,
        askedAtMs: Math.max(this.keyListings.get(key)?.askedAtMs ?? askedAtMs, askedAtMs),
        capped: key !== '' && list.length >= TAG_FILTER_LIMIT,
      };
      const prev = this.keyListings.get(key);
      if (!prev || prev.readAtMs <= started) this.keyListings.set(key, entry);
      if (key === '') {
        // A capped key below the limit again goes back to its own (smaller) listing.
        for (const [k, v] of this.keyListings) {
          if (v.capped && list.filter((i) => i.tags.some((t) => t.key === k)).length < TAG_FILTER_LIMIT)
            this.keyListings.delete(k);
        }
      }
      return entry;
    } finally {
      if (this.keyRefresh.get(key)?.done === done) this.keyRefresh.delete(key);
      finish();
    }
  }

  /**
   * Records that this process just wrote `tags` on each of `instanceIds` (one ECS `TagResources`
   * or `UntagResources` call; a value undefined: that key was removed), so every reader of the
   * view sees the write
   * before the next read: the instance's record and its entries in tag listings are updated now
   * (keeping their read time), and a read that started before the write and lands after it gets
   * the write applied. Listing membership is not changed: an instance that just gained a key
   * joins that key's listing at its next read. A write is applied for {@link TAG_WRITE_KEEP_MS}
   * at most (see {@link withWrites}). Cost: one pass over each key listing per call.
   */
  recordTags(instanceIds: readonly string[], tags: Readonly<Record<string, string | undefined>>): void {
    if (instanceIds.length === 0) return;
    const now = this.now();
    for (const [id, w] of this.tagWrites) if (now - w.atMs > TAG_WRITE_KEEP_MS) this.tagWrites.delete(id);
    const ids = new Set(instanceIds);
    for (const id of ids) {
      this.tagWrites.set(id, { tags: { ...this.tagWrites.get(id)?.tags, ...tags }, atMs: now });
      const view = this.instanceViews.get(id);
      if (view?.value)
        this.instanceViews.set(id, {
          ...view,
          value: { ...view.value, instance: withTags(view.value.instance, tags) },
        });
    }
    for (const l of this.keyListings.values()) {
      for (const [at, i] of l.value.entries()) if (ids.has(i.instanceId)) l.value[at] = withTags(i, tags);
    }
  }

  /**
   * `i` with the tags this process wrote on it ({@link recordTags}) applied: those written at or
   * after `readStartedMs` (the read may predate them), or all of them (a record a reader supplied).
   * Writes older than {@link TAG_WRITE_KEEP_MS} are not applied: by then every read reflects them,
   * and a later retag by another tool must win.
   */
  private withWrites(i: Instance, readStartedMs?: number): Instance {
    const w = this.tagWrites.get(i.instanceId);
    if (!w || this.now() - w.atMs > TAG_WRITE_KEEP_MS) return i;
    return readStartedMs === undefined || w.atMs >= readStartedMs ? withTags(i, w.tags) : i;
  }

  /** Forgets the patch state of `instanceId` (a scan or install just ran on it). */
  invalidatePatchState(instanceId: string): void {
    this.patches.delete(instanceId);
  }

  /**
   * OOS `GetTemplate` of (name, version), cached for the TTL (an unpinned version resolves to the
   * latest, so a new version is seen within the TTL). @throws CloudError (not cached).
   */
  template(name: string, version: string | undefined, o: ClientOptions = {}): Promise<TemplateDetail> {
    const key = `${name}@${version ?? 'latest'}`;
    const hit = this.templates.get(key);
    if (hit && this.now() - hit.readAtMs <= this.templateTtlMs) return Promise.resolve(hit.value);
    return this.templateReads.run(
      key,
      async (signal) => {
        this.reads.templates++;
        const t = await this.opts.oos(sharedView(signal, o)).getTemplate(name, version);
        this.templates.set(key, { value: t, readAtMs: this.now() });
        return t;
      },
      o.signal,
    );
  }

  /**
   * Records that this process just started execution `executionId` for `owner` (e.g. a resource
   * UID): adoption is needed until a status tracks the execution or a check ran after it
   * ({@link adoptionNeeded}), and until then a {@link runningExecutions} read with
   * `notBeforeOwner: owner` is never served from a listing read before that start. Other owners
   * keep sharing the cached listing.
   *
   * Called with the ClientToken BEFORE a start is sent (its answer may be lost: adoption is needed
   * until a check runs after it), then with the execution ID and `replaces` = that token once the
   * answer arrived (the ID's confirmation by status then ends the need).
   */
  noteStarted(owner: string, executionId: string, replaces?: string): void {
    const pending = this.unconfirmed.get(owner) ?? new Map<string, number>();
    const at = (replaces !== undefined ? pending.get(replaces) : undefined) ?? this.now();
    if (replaces !== undefined) pending.delete(replaces);
    pending.set(executionId, at);
    this.unconfirmed.set(owner, pending);
    this.ownExecutions.set(executionId, this.now());
  }

  /**
   * Records that `owner` was checked for running work its status does not track (adoption), with
   * a listing read after the check began at `checkedAtMs` (this process's clock): starts before
   * that are confirmed.
   */
  noteAdoptionChecked(owner: string, checkedAtMs: number): void {
    this.adoptionChecked.set(owner, checkedAtMs);
    const pending = this.unconfirmed.get(owner);
    for (const [id, at] of pending ?? []) if (at < checkedAtMs) pending?.delete(id);
    if (pending?.size === 0) this.unconfirmed.delete(owner);
  }

  /**
   * Whether `owner` must be checked for running work its status does not track (adoption): until
   * this process checked it once, and while an execution this process started is neither in
   * `tracked` (the execution IDs the owner's status tracks now; they are confirmed) nor older than
   * the last check. Otherwise no execution of it can be missing from its status (this process is
   * the only one starting them while it leads, and exits when it loses the Lease), so reconciles
   * after a start that reached status, and periodic drift checks, list nothing.
   */
  adoptionNeeded(owner: string, tracked: ReadonlySet<string> = new Set()): boolean {
    this.confirmTracked(owner, tracked);
    return !this.adoptionChecked.has(owner) || this.unconfirmed.has(owner);
  }

  /**
   * Records that `owner`'s status tracks the executions `tracked` (IDs): a start of this process
   * among them needs no adoption any more. Called by every poll of tracked work, so an execution
   * folded as finished (and then dropped from status) is not adopted again from a listing read
   * while it still ran.
   */
  confirmTracked(owner: string, tracked: Iterable<string>): void {
    const pending = this.unconfirmed.get(owner);
    if (!pending) return;
    for (const id of tracked) pending.delete(id);
    if (pending.size === 0) this.unconfirmed.delete(owner);
  }

  /**
   * How fresh the view of `ids` is for `kind`: the oldest per-instance read (ms of the view's
   * clock; undefined when none of them is known) and the full-resync period (ms).
   */
  freshness(
    kind: 'packages' | 'patches',
    ids: readonly string[],
  ): { oldestReadMs?: number; fullResyncMs: number } {
    const map = kind === 'packages' ? this.packages : this.patches;
    let oldest: number | undefined;
    for (const id of ids) {
      const e = map.get(id);
      if (e && (oldest === undefined || e.readAtMs < oldest)) oldest = e.readAtMs;
    }
    return { ...(oldest !== undefined ? { oldestReadMs: oldest } : {}), fullResyncMs: this.fullResyncMs };
  }

  /** The time of this process's clock, ms (the view's stamps use it). */
  nowMs(): number {
    return this.now();
  }

  /**
   * The last known state of the executions tagged `tagKey=tagValue` in the region that are running
   * or finished recently, shared by every reader: read no longer than `o.maxAgeMs` ago and, with
   * `o.newerThanMs`, read at or after that time (e.g. the start of the newest execution a poller
   * looks for). A refresh is one paged OOS `ListExecutions Status=Running`; it also lists
   * `EndDateAfter` = the newest end date seen minus a slack (first: the last
   * {@link FINISHED_RETENTION_MS}) only when an execution it listed running before is gone, or a
   * reader asks for ended ones (`o.ended`: it misses an execution in both lists). So a round over
   * any number of running executions costs pages of what changed, not a call per execution. One
   * refresh runs at a time per tag: readers needing newer data than the refresh in flight share the
   * next one. Finished executions are kept for {@link FINISHED_RETENTION_MS} and announced to
   * {@link onExecutionsFinished} listeners; an execution in neither list must be read by ID.
   * @returns the executions by ID and when that state was read (ms, this process's clock).
   * @throws CloudError.
   */
  async executionStates(
    tagKey: string,
    tagValue: string,
    o: ReadOptions & { newerThanMs?: number; ended?: boolean },
  ): Promise<{ byId: ReadonlyMap<string, Execution>; readAtMs: number }> {
    const key = `${tagKey}=${tagValue}`;
    // A refresh starting now is as new as any reader can ask for.
    const need = o.maxAgeMs > 0 ? Math.min(o.newerThanMs ?? -Infinity, this.now()) : this.now();
    const ended = o.ended === true;
    for (;;) {
      const hit = this.execStates.get(key);
      if (
        hit &&
        o.maxAgeMs > 0 &&
        this.now() - hit.readAtMs <= o.maxAgeMs &&
        hit.readAtMs >= need &&
        (!ended || hit.endedAtMs >= Math.max(need, hit.readAtMs))
      )
        return { byId: hit.all, readAtMs: hit.readAtMs };
      const cur = this.execRefresh.get(key);
      if (!cur || (cur.startedAtMs >= need && (!ended || cur.ended)))
        return this.execStateReads.run(
          `${key}|${cur?.gen ?? ++this.execGen}`,
          (signal) => this.refreshStates(key, tagKey, tagValue, signal, o, ended),
          o.signal,
        );
      // The refresh in flight does not answer this reader: wait for it, then share the next.
      await cur.done;
      if (o.signal?.aborted) throw o.signal.reason;
    }
  }

  /**
   * Registers `listener` for executions a refresh of {@link executionStates} sees finished for the
   * first time (not on the very first refresh of a tag, which reads the retention window). Called
   * synchronously after the refresh landed; a throwing listener is ignored.
   * @returns a function that unregisters it.
   */
  onExecutionsFinished(listener: (finished: readonly Execution[]) => void): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  /** One refresh of {@link executionStates} (registered in `execRefresh` while it runs). */
  private async refreshStates(
    key: string,
    tagKey: string,
    tagValue: string,
    signal: AbortSignal,
    o: ClientOptions,
    endedWanted: boolean,
  ): Promise<{ byId: ReadonlyMap<string, Execution>; readAtMs: number }> {
    const started = this.now();
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const entry = { gen: this.execGen, startedAtMs: started, ended: endedWanted, done };
    this.execRefresh.set(key, entry);
    try {
      this.reads.executionListings++;
      const prev = this.execStates.get(key);
      const oos = this.opts.oos(sharedView(signal, o));
      const tags = { [tagKey]: tagValue };
      const running = await oos.listAllExecutions({ tags, status: 'Running' });
      const runningIds = new Set(running.map((e) => e.executionId));
      const gone = prev ? [...prev.running.keys()].some((id) => !runningIds.has(id)) : true;
      let ended: Execution[] | undefined;
      if (gone || endedWanted) {
        entry.ended = true;
        const endAfter = prev?.newestEnd
          ? isoSeconds(Date.parse(prev.newestEnd) - END_DATE_SLACK_MS)
          : isoSeconds(started - FINISHED_RETENTION_MS);
        ended = await oos.listAllExecutions({ tags, endDateAfter: endAfter });
      }
      const st: ExecutionStates = this.execStates.get(key) ?? {
        running: new Map(),
        finished: new Map(),
        readAtMs: -Infinity,
        endedAtMs: -Infinity,
        all: new Map(),
      };
      if (st.readAtMs > started) return { byId: st.all, readAtMs: st.readAtMs }; // a later refresh landed
      st.running = new Map(running.map((e) => [e.executionId, e]));
      const fresh: Execution[] = [];
      for (const e of ended ?? []) {
        if (!TERMINAL_EXECUTION_STATUSES.includes(e.status)) continue;
        if (!st.finished.has(e.executionId)) {
          st.finished.set(e.executionId, { exec: e, seenAtMs: started });
          fresh.push(e);
        }
        if (e.endDate && (!st.newestEnd || e.endDate > st.newestEnd)) st.newestEnd = e.endDate;
      }
      for (const [id, f] of st.finished)
        if (started - f.seenAtMs > FINISHED_RETENTION_MS) st.finished.delete(id);
      st.readAtMs = started;
      if (ended) st.endedAtMs = started;
      st.all = merged(st);
      this.execStates.set(key, st);
      if (prev && fresh.length > 0) {
        for (const l of this.finishedListeners) {
          try {
            l(fresh);
          } catch {
            // a listener's failure is its own
          }
        }
      }
      return { byId: st.all, readAtMs: started };
    } finally {
      if (this.execRefresh.get(key)?.done === done) this.execRefresh.delete(key);
      finish();
    }
  }

  /**
   * Every execution tagged `tagKey=tagValue` in the region with one of `o.statuses` (default every
   * active status; OOS `ListExecutions` per status, all pages), read no longer than `o.maxAgeMs`
   * ago and shared by every reader.
   * @throws CloudError.
   */
  async runningExecutions(
    tagKey: string,
    tagValue: string,
    o: ReadOptions & { statuses?: readonly string[]; notBeforeOwner?: string },
  ): Promise<Execution[]> {
    const statuses = o.statuses ?? ACTIVE_EXECUTION_STATUSES;
    const key = `${tagKey}=${tagValue}|${[...statuses].sort().join(',')}`;
    const hit = this.listings.get(key);
    const notBefore = Math.max(
      -Infinity,
      ...(o.notBeforeOwner === undefined ? [] : (this.unconfirmed.get(o.notBeforeOwner)?.values() ?? [])),
    );
    if (hit && o.maxAgeMs > 0 && this.now() - hit.readAtMs <= o.maxAgeMs && hit.readAtMs > notBefore)
      return hit.value;
    // A read already in flight may have started before the owner's last start: join only reads
    // started after it (the key carries the start bound).
    return this.listingReads.run(
      `${key}|${o.maxAgeMs > 0 && notBefore === -Infinity ? 'any' : this.now()}`,
      async (signal) => {
        this.reads.executionListings++;
        const started = this.now();
        const oos = this.opts.oos(sharedView(signal, o));
        const pages = await Promise.all(
          statuses.map((status) => oos.listAllExecutions({ tags: { [tagKey]: tagValue }, status })),
        );
        const seen = new Set<string>();
        const all = pages.flat().filter((e) => !seen.has(e.executionId) && seen.add(e.executionId));
        const prev = this.listings.get(key);
        if (!prev || prev.readAtMs <= started) this.listings.set(key, { value: all, readAtMs: started });
        return all;
      },
      o.signal,
    );
  }
}

/** The kinds of per-instance state the change feed keeps fresh. */
type StateKind = 'packages' | 'patches';

/**
 * The share of the full-resync period after which `id`'s state is re-read: 0.75–1, fixed per
 * instance (FNV-1a of the ID), so instances read together are re-read spread over a quarter period.
 */
function resyncSpread(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return 0.75 + (0.25 * h) / 0x1_0000_0000;
}

/**
 * The most resources ECS `DescribeInstances` returns for a tag filter (`Tag.N.Key`; the API
 * reference, https://www.alibabacloud.com/help/en/ecs/developer-reference/api-ecs-2014-05-26-describeinstances,
 * as summarised in the project's API notes §6.1: "tag filters limited to 1000 matching
 * resources"): a listing this large may be cut short. The emulator does not cut (docs/emulator.md).
 */
export const TAG_FILTER_LIMIT = 1000;
/** A tag key's listing nobody asked for within this long is dropped, ms. */
export const TAG_LISTING_RETAIN_MS = 10 * 60_000;
/** How long the tags this process wrote are applied to reads that may predate them, ms. */
const TAG_WRITE_KEEP_MS = 5 * 60_000;

/** What {@link RegionFleet} keeps per tag key. */
interface KeyListing extends Stamped<Instance[]> {
  /** When a reader last asked for the key, ms. */
  askedAtMs: number;
  /** The listing reached {@link TAG_FILTER_LIMIT}: the key is served from the region listing. */
  capped: boolean;
}

/** `i` with `tags` written over its tags (a value undefined: the key removed). */
function withTags(i: Instance, tags: Readonly<Record<string, string | undefined>>): Instance {
  const kept = i.tags.filter((t) => !(t.key in tags));
  const added = Object.entries(tags).flatMap(([key, value]) => (value === undefined ? [] : [{ key, value }]));
  return { ...i, tags: [...kept, ...added] };
}

/** True when `i` carries every tag of `tags` (a filter without a value matches any value). */
function hasTags(i: Instance, tags: readonly TagFilter[]): boolean {
  return tags.every((t) =>
    i.tags.some((x) => x.key === t.key && (t.value === undefined || x.value === t.value)),
  );
}

/** What {@link RegionFleet.executionStates} keeps per tag. */
interface ExecutionStates {
  running: Map<string, Execution>;
  /** Finished executions by ID, with when this process first saw them finished (ms). */
  finished: Map<string, { exec: Execution; seenAtMs: number }>;
  readAtMs: number;
  /** When the last refresh that listed ended executions started (ms). */
  endedAtMs: number;
  /** Running and finished by ID, built once per refresh. */
  all: ReadonlyMap<string, Execution>;
  /** The newest `EndDate` seen (the cloud's clock), the next `EndDateAfter` bound minus the slack. */
  newestEnd?: string;
}

/** How long a finished execution stays in the view for pollers that have not seen it yet, ms. */
export const FINISHED_RETENTION_MS = 15 * 60_000;
/**
 * Overlap of consecutive `EndDateAfter` listings (second-resolution dates, results visible a
 * little late), ms. Small on purpose: at a high finish rate every second of overlap is pages of
 * executions listed again. An end visible later than this is not announced, but its poller, missing
 * it from the view, lists ended executions again and then reads it by ID.
 */
const END_DATE_SLACK_MS = 2_000;

/** Running and finished executions of `v` by ID (finished wins: it was listed later or ended). */
function merged(v: ExecutionStates): ReadonlyMap<string, Execution> {
  const out = new Map(v.running);
  for (const [id, f] of v.finished) out.set(id, f.exec);
  return out;
}

/** The fields of a package state the controllers use (drops descriptions and publisher data). */
function compactState(s: PackageState): PackageState {
  const out: PackageState = { templateName: s.templateName, parameters: s.parameters ?? {} };
  if (s.templateVersion !== undefined) out.templateVersion = s.templateVersion;
  if (s.updateTime !== undefined) out.updateTime = s.updateTime;
  return out;
}
