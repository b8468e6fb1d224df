/**
 * Prometheus metrics of the cloud layer, registered on the injected (private) Registry:
 * - `ecsops_cloud_api_requests_total{product,action,code}`: one per HTTP attempt; `code` is
 *   `OK`, the Alibaba Cloud error Code, or `NetworkError`;
 * - `ecsops_cloud_api_request_duration_seconds{product,action}`: histogram, one observation per
 *   HTTP attempt (seconds, queue wait excluded);
 * - `ecsops_cloud_api_retries_total{product,action}`: attempts re-sent after a transient error.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface CloudMetrics {
  requests: Counter<'product' | 'action' | 'code'>;
  duration: Histogram<'product' | 'action'>;
  retries: Counter<'product' | 'action'>;
}

const REQUESTS = 'ecsops_cloud_api_requests_total';
const DURATION = 'ecsops_cloud_api_request_duration_seconds';
const RETRIES = 'ecsops_cloud_api_retries_total';

const cache = new WeakMap<Registry, CloudMetrics>();

/**
 * Returns the cloud metrics registered on `registry`, creating them on first use (so several
 * factories may share one Registry). Throws prom-client's error if another module registered a
 * metric with one of these names and a different type.
 */
export function cloudMetrics(registry: Registry): CloudMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const m: CloudMetrics = {
    requests: new Counter({
      name: REQUESTS,
      help: 'Alibaba Cloud API HTTP attempts by product, action and result code (OK, Alibaba error Code, or NetworkError).',
      labelNames: ['product', 'action', 'code'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: DURATION,
      help: 'Duration of Alibaba Cloud API HTTP attempts in seconds.',
      labelNames: ['product', 'action'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    retries: new Counter({
      name: RETRIES,
      help: 'Alibaba Cloud API attempts re-sent after a transient error.',
      labelNames: ['product', 'action'] as const,
      registers: [registry],
    }),
  };
  cache.set(registry, m);
  return m;
}

/** Pre-initialises `requests_total{code="OK"}` and `retries_total` to 0 for each action (so rate() works). */
export function initActionMetrics(m: CloudMetrics, product: string, actions: Iterable<string>): void {
  for (const action of actions) {
    m.requests.inc({ product, action, code: 'OK' }, 0);
    m.retries.inc({ product, action }, 0);
  }
}

/** `feed` label values of `ecsops_change_feed_read_age_seconds`. */
export const CHANGE_FEEDS = ['packages', 'patches', 'actiontrail'] as const;
export type FeedName = (typeof CHANGE_FEEDS)[number];

/** Records the change-feed reads of every region's fleet view (see {@link changeFeedMetrics}). */
export interface ChangeFeedMetrics {
  /**
   * A change-feed read of `feed` in `regionId` started at `readAtMs` (the fleet view's clock, ms
   * since the epoch). The gauge reports the age of the newest one at scrape time.
   */
  observeFeedRead(regionId: string, feed: FeedName, readAtMs: number): void;
}

const FEED_AGE = 'ecsops_change_feed_read_age_seconds';
const feedCache = new WeakMap<Registry, ChangeFeedMetrics>();

/**
 * `ecsops_change_feed_read_age_seconds{region,feed}` on `registry` (created on first use, shared by
 * every factory on the registry): seconds since the last change-feed read of `feed` (packages:
 * OOS ListExecutions of package templates; patches: of patch templates; actiontrail: ActionTrail
 * LookupEvents) started in the region, computed at scrape time with `now` (default `Date.now`;
 * the fleet view's clock). A region's series appear with its first read. Alert when it exceeds a
 * few intervals: drift is then seen only by the full resync.
 */
export function changeFeedMetrics(registry: Registry, now: () => number = Date.now): ChangeFeedMetrics {
  const hit = feedCache.get(registry);
  if (hit) return hit;
  const last = new Map<string, { region: string; feed: FeedName; readAtMs: number }>();
  new Gauge({
    name: FEED_AGE,
    help: "Seconds since the last change-feed read of the region's fleet view started, by feed (packages, patches, actiontrail).",
    labelNames: ['region', 'feed'] as const,
    registers: [registry],
    collect() {
      const t = now();
      for (const e of last.values())
        this.set({ region: e.region, feed: e.feed }, Math.max(0, (t - e.readAtMs) / 1000));
    },
  });
  const m: ChangeFeedMetrics = {
    observeFeedRead(region, feed, readAtMs) {
      const key = `${region}\u0000${feed}`;
      const prev = last.get(key);
      if (!prev || readAtMs >= prev.readAtMs) last.set(key, { region, feed, readAtMs });
    },
  };
  feedCache.set(registry, m);
  return m;
}
