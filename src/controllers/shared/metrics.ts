/**
 * `ecsops_*` domain metrics of the controllers (DESIGN §5), on an injected prom-client Registry.
 * Label cardinality is bounded: per-resource gauges carry kind/namespace/name/state (no
 * per-instance labels); execution counters carry template/action/status.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ControllerMetrics } from './deps.js';

export const INSTANCE_STATES = [
  'targeted',
  'installed',
  'pending',
  'inProgress',
  'failed',
  'unreachable',
] as const;

/** The kstatus condition types `ecsops_resource_condition` reports. */
export const CONDITION_TYPES = ['Ready', 'Stalled', 'Reconciling'] as const;
const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** Kinds whose batches an analysis (spec.analysis) gates. */
export const ANALYSIS_KINDS = ['AppRelease', 'PatchPolicy'] as const;
/**
 * Results of `ecsops_analysis_runs_total`: Successful (every metric measured within its limits),
 * Failed (a failure condition past failureLimit), Inconclusive (past inconclusiveLimit: no answer or
 * no decision; it stops the rollout like a failure).
 */
export const ANALYSIS_RESULTS = ['Successful', 'Failed', 'Inconclusive'] as const;
export type AnalysisResult = (typeof ANALYSIS_RESULTS)[number];

export class DomainMetrics implements ControllerMetrics {
  private readonly started: Counter<'template' | 'action'>;
  private readonly finished: Counter<'template' | 'status'>;
  private readonly instances: Gauge<'kind' | 'namespace' | 'name' | 'state'>;
  private readonly conditions: Gauge<'kind' | 'namespace' | 'name' | 'type' | 'status'>;
  private readonly oldestRead: Gauge<'kind' | 'namespace' | 'name'>;
  private readonly drained: Gauge<'kind' | 'namespace' | 'name'>;
  private readonly analysisRuns: Counter<'kind' | 'result'>;
  /** State keys set per `kind/namespace/name`, so deletion removes exactly those series. */
  private readonly statesBy = new Map<string, Set<string>>();

  /** Registers the metrics on `registry`; counters are pre-initialised for known label values. */
  /**
   * @param templates action labels to pre-initialise per template.
   * @param kindStates the states each kind always reports (missing counts are set to 0).
   */
  constructor(
    registry: Registry,
    templates: Record<string, readonly string[]> = {},
    private readonly kindStates: Record<string, readonly string[]> = { EcsExtension: INSTANCE_STATES },
  ) {
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
    this.conditions = new Gauge({
      name: 'ecsops_resource_condition',
      help: 'kstatus condition of each resource: 1 on the status (True, False, Unknown) its Ready, Stalled and Reconciling conditions have, 0 on the others (Flux gotk_reconcile_condition).',
      labelNames: ['kind', 'namespace', 'name', 'type', 'status'],
      registers: [registry],
    });
    this.analysisRuns = new Counter({
      name: 'ecsops_analysis_runs_total',
      help: 'Finished analysis runs (spec.analysis, one per gated batch or execution) by kind and result (Successful, Failed, Inconclusive).',
      labelNames: ['kind', 'result'],
      registers: [registry],
    });
    for (const kind of ANALYSIS_KINDS)
      for (const result of ANALYSIS_RESULTS) this.analysisRuns.inc({ kind, result }, 0);
    this.oldestRead = new Gauge({
      name: 'ecsops_state_oldest_read_age_seconds',
      help: "Seconds since the oldest one-by-one state read among a resource's targets (EcsExtension package states, PatchPolicy patch states), as of the resource's last reconcile: stays below the controller's --full-resync-period plus one interval; a higher value means the full resync is not keeping up.",
      labelNames: ['kind', 'namespace', 'name'],
      registers: [registry],
    });
    this.drained = new Gauge({
      name: 'ecsops_drained_backends',
      help: 'Load balancer backends (CLB vServer group / ALB server group members) a resource holds out of rotation or is putting back (spec.trafficControl), as of its last reconcile.',
      labelNames: ['kind', 'namespace', 'name'],
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

  /** `ecsops_analysis_runs_total{kind,result}` +1: an analysis run of a `kind` resource ended. */
  analysisFinished(kind: string, result: AnalysisResult): void {
    this.analysisRuns.inc({ kind, result });
  }

  /** Sets one series per state key in `counts` (every kind reports its own states). */
  setInstanceCounts(kind: string, namespace: string, name: string, counts: Record<string, number>): void {
    const key = `${kind}/${namespace}/${name}`;
    const states = this.statesBy.get(key) ?? new Set<string>();
    for (const state of new Set([...(this.kindStates[kind] ?? []), ...Object.keys(counts)])) {
      this.instances.set({ kind, namespace, name, state }, counts[state] ?? 0);
      states.add(state);
    }
    this.statesBy.set(key, states);
  }

  /** One series per (condition type, status): 1 where the condition has that status, else 0. */
  setConditions(
    kind: string,
    namespace: string,
    name: string,
    conditions: ReadonlyArray<{ type: string; status: string }>,
  ): void {
    for (const type of CONDITION_TYPES) {
      const has = conditions.find((c) => c.type === type)?.status ?? 'Unknown';
      for (const status of CONDITION_STATUSES)
        this.conditions.set({ kind, namespace, name, type, status }, has === status ? 1 : 0);
    }
  }

  /** Sets (or, for `undefined`, removes) the resource's oldest-read age series. */
  setOldestReadAge(kind: string, namespace: string, name: string, seconds: number | undefined): void {
    if (seconds === undefined) this.oldestRead.remove({ kind, namespace, name });
    else this.oldestRead.set({ kind, namespace, name }, seconds);
  }

  /** Sets (or, for `undefined`, removes) the resource's drained-backends series. */
  setDrainedBackends(kind: string, namespace: string, name: string, count: number | undefined): void {
    if (count === undefined) this.drained.remove({ kind, namespace, name });
    else this.drained.set({ kind, namespace, name }, count);
  }

  /** Removes every series of the resource (no stale gauges after deletion). */
  deleteResource(kind: string, namespace: string, name: string): void {
    this.oldestRead.remove({ kind, namespace, name });
    this.drained.remove({ kind, namespace, name });
    for (const type of CONDITION_TYPES)
      for (const status of CONDITION_STATUSES)
        this.conditions.remove({ kind, namespace, name, type, status });
    const key = `${kind}/${namespace}/${name}`;
    const states = new Set([...INSTANCE_STATES, ...(this.statesBy.get(key) ?? [])]);
    for (const state of states) this.instances.remove({ kind, namespace, name, state });
    this.statesBy.delete(key);
  }
}
