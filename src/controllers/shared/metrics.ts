/**
 * `ecsops_*` domain metrics of the controllers (DESIGN §5), on an injected prom-client Registry.
 * Label cardinality is bounded: per-resource gauges carry kind/namespace/name/state (no
 * per-instance labels); execution counters carry template/action/status.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ControllerMetrics } from '../ecsextension/reconciler.js';

export const INSTANCE_STATES = [
  'targeted',
  'installed',
  'pending',
  'inProgress',
  'failed',
  'unreachable',
] as const;

export class DomainMetrics implements ControllerMetrics {
  private readonly started: Counter<'template' | 'action'>;
  private readonly finished: Counter<'template' | 'status'>;
  private readonly instances: Gauge<'kind' | 'namespace' | 'name' | 'state'>;

  /** Registers the metrics on `registry`; counters are pre-initialised for known label values. */
  constructor(registry: Registry, templates: Record<string, readonly string[]> = {}) {
    this.started = new Counter({
      name: 'ecsops_executions_started_total',
      help: 'OOS executions / Cloud Assistant invocations started, by template and action.',
      labelNames: ['template', 'action'],
      registers: [registry],
    });
    this.finished = new Counter({
      name: 'ecsops_executions_finished_total',
      help: 'OOS executions / Cloud Assistant invocations that reached a terminal status, by template and status.',
      labelNames: ['template', 'status'],
      registers: [registry],
    });
    this.instances = new Gauge({
      name: 'ecsops_resource_instances',
      help: 'Instances per resource by state (targeted, installed, pending, inProgress, failed, unreachable).',
      labelNames: ['kind', 'namespace', 'name', 'state'],
      registers: [registry],
    });
    for (const [template, actions] of Object.entries(templates)) {
      for (const action of actions) this.started.inc({ template, action }, 0);
      for (const status of ['Success', 'Failed', 'Cancelled']) this.finished.inc({ template, status }, 0);
    }
  }

  executionStarted(template: string, action: string): void {
    this.started.inc({ template, action });
  }

  executionFinished(template: string, status: string): void {
    this.finished.inc({ template, status });
  }

  setInstanceCounts(kind: string, namespace: string, name: string, counts: Record<string, number>): void {
    for (const state of INSTANCE_STATES)
      this.instances.set({ kind, namespace, name, state }, counts[state] ?? 0);
  }

  deleteResource(kind: string, namespace: string, name: string): void {
    for (const state of INSTANCE_STATES) this.instances.remove({ kind, namespace, name, state });
  }
}
