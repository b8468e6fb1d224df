/**
 * Prometheus metrics of the cloud layer, registered on the injected (private) Registry:
 * - `ecsops_cloud_api_requests_total{product,action,code}`: one per HTTP attempt; `code` is
 *   `OK`, the Alibaba Cloud error Code, or `NetworkError`;
 * - `ecsops_cloud_api_request_duration_seconds{product,action}`: histogram, one observation per
 *   HTTP attempt (seconds, queue wait excluded);
 * - `ecsops_cloud_api_retries_total{product,action}`: attempts re-sent after a transient error.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

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
