import { Counter, Gauge, Histogram, exponentialBuckets } from 'prom-client';
import type { Registry } from 'prom-client';

/**
 * controller-runtime's metric families (names, labels and buckets as in
 * `pkg/internal/controller/metrics/metrics.go`, `pkg/internal/metrics/workqueue.go` and
 * `pkg/metrics/leaderelection.go`), registered once per private prom-client Registry.
 */
export interface ControllerRuntimeMetrics {
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  terminalReconcileErrors: Counter<'controller'>;
  reconcilePanics: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  activeWorkers: Gauge<'controller'>;
  workqueue: WorkqueueMetricsProvider;
  leaderElectionMasterStatus: Gauge<'name'>;
}

/** The `result` label values of `controller_runtime_reconcile_total`. */
export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
export type ReconcileResultLabel = (typeof RECONCILE_RESULTS)[number];

/** controller-runtime's `reconcile_time_seconds` buckets (seconds). */
export const RECONCILE_TIME_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/**
 * Per-queue metric hooks called by {@link import('./workqueue.js').Workqueue}. Durations are in
 * **seconds**.
 */
export interface QueueMetrics {
  /** A key entered the queue (not already dirty): `workqueue_adds_total`+1, `workqueue_depth`+1. */
  add(): void;
  /** A key left the queue for a worker after `queuedSeconds`: depth−1, queue duration observed. */
  get(queuedSeconds: number): void;
  /** A worker finished a key after `workSeconds`: work duration observed. */
  done(workSeconds: number): void;
  /** `addRateLimited` was called: `workqueue_retries_total`+1. */
  retry(): void;
  /** Queued keys were dropped (shutdown): depth−count. */
  dropped(count: number): void;
  /** The queue was shut down; its in-flight gauges stop being reported. */
  close(): void;
}

/** Creates {@link QueueMetrics} for a named queue; `inFlightSeconds` lists the ages of keys being processed. */
export interface WorkqueueMetricsProvider {
  forQueue(name: string, inFlightSeconds: () => number[]): QueueMetrics;
}

/** Metrics that discard everything (the default when a queue is built without a registry). */
export const noopQueueMetrics: QueueMetrics = {
  add: () => undefined,
  get: () => undefined,
  done: () => undefined,
  retry: () => undefined,
  dropped: () => undefined,
  close: () => undefined,
};

const cache = new WeakMap<Registry, ControllerRuntimeMetrics>();

/**
 * Returns the controller-runtime metric families registered on `registry`, registering them on
 * first use (prom-client throws on duplicate registration, so callers share this instance).
 */
export function controllerRuntimeMetrics(registry: Registry): ControllerRuntimeMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const wqLabels = ['name', 'controller'] as const;
  const depth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name', 'controller', 'priority'] as const,
    registers,
  });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: wqLabels,
    registers,
  });
  const wqBuckets = exponentialBuckets(1e-8, 10, 12);
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: wqLabels,
    buckets: wqBuckets,
    registers,
  });
  const workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames: wqLabels,
    buckets: wqBuckets,
    registers,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: wqLabels,
    registers,
  });
  const inFlight = new Map<string, () => number[]>();
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help:
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
      'Large values indicate stuck threads.',
    labelNames: wqLabels,
    registers,
    collect() {
      this.reset();
      for (const [name, ages] of inFlight) this.set({ name, controller: name }, sum(ages()));
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames: wqLabels,
    registers,
    collect() {
      this.reset();
      for (const [name, ages] of inFlight) this.set({ name, controller: name }, Math.max(0, ...ages()));
    },
  });

  const workqueue: WorkqueueMetricsProvider = {
    forQueue(name, inFlightSeconds) {
      const labels = { name, controller: name };
      const depthLabels = { ...labels, priority: '' };
      depth.set(depthLabels, 0);
      adds.inc(labels, 0);
      retries.inc(labels, 0);
      inFlight.set(name, inFlightSeconds);
      return {
        add: () => {
          adds.inc(labels);
          depth.inc(depthLabels);
        },
        get: (queuedSeconds) => {
          depth.dec(depthLabels);
          queueDuration.observe(labels, queuedSeconds);
        },
        done: (workSeconds) => workDuration.observe(labels, workSeconds),
        retry: () => retries.inc(labels),
        dropped: (count) => depth.dec(depthLabels, count),
        close: () => {
          if (inFlight.get(name) === inFlightSeconds) inFlight.delete(name);
        },
      };
    },
  };

  const metrics: ControllerRuntimeMetrics = {
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    terminalReconcileErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    reconcilePanics: new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'] as const,
      buckets: RECONCILE_TIME_BUCKETS,
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    workqueue,
    leaderElectionMasterStatus: new Gauge({
      name: 'leader_election_master_status',
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
      labelNames: ['name'] as const,
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}

/**
 * Pre-initialises every per-controller series to zero (controller-runtime calls `.Add(0)` for each
 * `result` value at start-up) so `rate()` queries see the series before the first reconcile.
 */
export function initControllerMetrics(
  m: ControllerRuntimeMetrics,
  controller: string,
  workers: number,
): void {
  for (const result of RECONCILE_RESULTS) m.reconcileTotal.inc({ controller, result }, 0);
  m.reconcileErrors.inc({ controller }, 0);
  m.terminalReconcileErrors.inc({ controller }, 0);
  m.reconcilePanics.inc({ controller }, 0);
  m.activeWorkers.set({ controller }, 0);
  m.maxConcurrentReconciles.set({ controller }, workers);
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
