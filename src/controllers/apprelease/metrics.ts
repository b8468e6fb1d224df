/**
 * AppRelease metrics (DESIGN §5), on the controller's private prom-client Registry:
 * `ecsops_apprelease_instances{namespace,name,state}`, `ecsops_apprelease_rollouts_total
 * {namespace,name,result}` and `ecsops_apprelease_batch_duration_seconds` (histogram). Per-resource
 * series are removed when the resource goes away. No per-instance labels.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { APP_RELEASE_KIND } from '../../api/apprelease.js';
import type { ControllerMetrics } from '../shared/deps.js';

/** Results counted by `ecsops_apprelease_rollouts_total`. */
export const ROLLOUT_RESULTS = ['Succeeded', 'Failed', 'RolledBack', 'Superseded'] as const;
export type RolloutResult = (typeof ROLLOUT_RESULTS)[number];

/** The AppRelease metric families. */
export class AppReleaseMetrics {
  private readonly instances: Gauge<'namespace' | 'name' | 'state'>;
  private readonly rollouts: Counter<'namespace' | 'name' | 'result'>;
  private readonly batchDuration: Histogram;
  private readonly statesBy = new Map<string, Set<string>>();

  constructor(registry: Registry) {
    this.instances = new Gauge({
      name: 'ecsops_apprelease_instances',
      help: 'Instances per AppRelease by state (targeted, updated, healthy, inProgress, failed, rolledBack, pending, unreachable).',
      labelNames: ['namespace', 'name', 'state'],
      registers: [registry],
    });
    this.rollouts = new Counter({
      name: 'ecsops_apprelease_rollouts_total',
      help: 'Finished AppRelease rollouts by result (Succeeded, Failed, RolledBack, Superseded).',
      labelNames: ['namespace', 'name', 'result'],
      registers: [registry],
    });
    this.batchDuration = new Histogram({
      name: 'ecsops_apprelease_batch_duration_seconds',
      help: 'Seconds from the start of an AppRelease batch to its last instance finishing.',
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
      registers: [registry],
    });
  }

  /** Sets the instance gauges of one AppRelease (pre-initialises its rollout counters to 0). */
  setInstances(namespace: string, name: string, counts: Record<string, number>): void {
    const key = `${namespace}/${name}`;
    if (!this.statesBy.has(key))
      for (const result of ROLLOUT_RESULTS) this.rollouts.inc({ namespace, name, result }, 0);
    const states = this.statesBy.get(key) ?? new Set<string>();
    for (const [state, n] of Object.entries(counts)) {
      this.instances.set({ namespace, name, state }, n);
      states.add(state);
    }
    this.statesBy.set(key, states);
  }

  /** A rollout of `namespace/name` ended with `result`. */
  rolloutFinished(namespace: string, name: string, result: RolloutResult): void {
    this.rollouts.inc({ namespace, name, result });
  }

  /** A batch took `seconds`. */
  batchFinished(seconds: number): void {
    this.batchDuration.observe(Math.max(0, seconds));
  }

  /** Removes every series of `namespace/name`. */
  delete(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    for (const state of this.statesBy.get(key) ?? []) this.instances.remove({ namespace, name, state });
    for (const result of ROLLOUT_RESULTS) this.rollouts.remove({ namespace, name, result });
    this.statesBy.delete(key);
  }

  /**
   * The driver's {@link ControllerMetrics} for this kind: forwards to the shared domain metrics and
   * mirrors AppRelease instance counts into `ecsops_apprelease_instances`.
   */
  forDriver(shared: ControllerMetrics): ControllerMetrics {
    return {
      executionStarted: (t, a) => shared.executionStarted(t, a),
      executionFinished: (t, s) => shared.executionFinished(t, s),
      setInstanceCounts: (kind, namespace, name, counts) => {
        shared.setInstanceCounts(kind, namespace, name, counts);
        if (kind === APP_RELEASE_KIND) this.setInstances(namespace, name, counts);
      },
      setConditions: (kind, namespace, name, conditions) =>
        shared.setConditions(kind, namespace, name, conditions),
      setDrainedBackends: (kind, namespace, name, n) => shared.setDrainedBackends?.(kind, namespace, name, n),
      deleteResource: (kind, namespace, name) => {
        shared.deleteResource(kind, namespace, name);
        if (kind === APP_RELEASE_KIND) this.delete(namespace, name);
      },
    };
  }
}
