import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client default metrics left out: gauges named with a counter's `_total` suffix, which
 * `promtool check metrics` rejects ("non-counter metrics should not have _total suffix"). The same
 * numbers are `sum(nodejs_active_handles)`, `sum(nodejs_active_requests)` and
 * `sum(nodejs_active_resources)` (those gauges have a `type` label).
 */
export const DROPPED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/**
 * A private prom-client Registry (never the global one) with the default process / Node.js
 * metrics (`process_*`, `nodejs_*`, collected at scrape time) but {@link DROPPED_DEFAULT_METRICS}.
 * Controller-runtime families are added by `controllerRuntimeMetrics(registry)` in
 * src/runtime/metrics.ts; domain metrics use the `ecsops_` prefix. A scrape passes
 * `promtool check metrics` (test/integration/runtime/metrics-promtool.test.ts).
 */
export function createRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  return registry;
}
