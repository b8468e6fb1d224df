/**
 * Dependency interfaces every kind's reconciler takes through its constructor (STYLE habit 8):
 * small enough that tests pass in-memory fakes and `main.ts` passes the real runtime parts.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EventSink } from '../../runtime/events.js';

export type { EventSink, EventType } from '../../runtime/events.js';

/** A namespaced custom resource of one of our kinds, with a typed spec and status. */
export interface Resource<Spec = unknown, Status = unknown> extends KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: NonNullable<KubernetesObject['metadata']>;
  spec: Spec;
  status?: Status;
}

/**
 * Writes to the Kubernetes API: the `/status` subresource and `metadata.finalizers` only, never
 * spec (DESIGN §4). Implemented by the runtime's `StatusPatcher` and by the fast tier's in-memory
 * store.
 */
export interface KubeWriter<T extends Resource> {
  /** Writes `status` to the /status subresource when it differs from `obj.status` (no-op otherwise). */
  patchStatus(obj: T, status: NonNullable<T['status']>): Promise<unknown>;
  /** Adds `finalizer` if absent. @throws TransientError on conflict or API failure. */
  addFinalizer(obj: T, finalizer: string): Promise<unknown>;
  /** Removes `finalizer` if present (a 404 is success). @throws TransientError on conflict or API failure. */
  removeFinalizer(obj: T, finalizer: string): Promise<unknown>;
  /**
   * The newest copy of `cached` this writer knows: the object its last write returned when that
   * is newer than the informer's copy (which lags our own writes by a watch round trip),
   * otherwise `cached` itself. Optional: writers that read back their own writes omit it.
   */
  freshest?(cached: T): T;
  /** Drops what the writer remembers about a UID (object gone). */
  forget?(uid: string): void;
}

/** Domain metrics the controllers report (`ecsops_*`, DESIGN §5). */
export interface ControllerMetrics {
  /** `ecsops_executions_started_total{template,action}` +1. */
  executionStarted(template: string, action: string): void;
  /** `ecsops_executions_finished_total{template,status}` +1. */
  executionFinished(template: string, status: string): void;
  /** Sets `ecsops_resource_instances{kind,namespace,name,state}` for every state in `counts`. */
  setInstanceCounts(kind: string, namespace: string, name: string, counts: Record<string, number>): void;
  /**
   * Sets `ecsops_resource_condition{kind,namespace,name,type,status}` for the kstatus conditions
   * (Ready, Stalled, Reconciling): 1 on the status each condition has, 0 on the other two.
   */
  setConditions(
    kind: string,
    namespace: string,
    name: string,
    conditions: ReadonlyArray<{ type: string; status: string }>,
  ): void;
  /**
   * Sets `ecsops_state_oldest_read_age_seconds{kind,namespace,name}`: seconds since the oldest
   * per-instance state read among the resource's targets; `undefined` removes the series (no
   * target read). Kinds without per-instance state reads never call it.
   */
  setOldestReadAge?(kind: string, namespace: string, name: string, seconds: number | undefined): void;
  /**
   * Sets `ecsops_drained_backends{kind,namespace,name}`: load balancer backends the resource holds
   * out of rotation (spec.trafficControl; `status.trafficControl.backends`), or removes the series
   * (`undefined`: the resource has no traffic control).
   */
  setDrainedBackends?(kind: string, namespace: string, name: string, count: number | undefined): void;
  /** Removes every per-resource series of (kind, namespace, name). */
  deleteResource(kind: string, namespace: string, name: string): void;
  /** `ecsops_analysis_runs_total{kind,result}` +1 (Successful, Failed, Inconclusive); optional for fakes. */
  analysisFinished?(kind: string, result: 'Successful' | 'Failed' | 'Inconclusive'): void;
}

/** Reads objects of one kind from the informer cache. */
export interface ObjectReader<T extends Resource> {
  get(namespace: string, name: string): T | undefined;
  /** Every cached object of the kind (all watched namespaces). */
  list(): T[];
}

/** The shared dependencies of a kind's reconciler. */
export interface KitDeps<T extends Resource> {
  objects: ObjectReader<T>;
  kube: KubeWriter<T>;
  events: EventSink;
  metrics: ControllerMetrics;
  /** Wall clock; default `() => new Date()`. The fast tier passes a fake. */
  now?: () => Date;
}
