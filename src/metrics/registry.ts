import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A private prom-client Registry (never the global one) with the default process / Node.js
 * metrics (`process_*`, `nodejs_*`, collected at scrape time). Controller-runtime families are
 * added by `controllerRuntimeMetrics(registry)` in src/runtime/metrics.ts; domain metrics use the
 * `ecsops_` prefix.
 */
export function createRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
