/**
 * `registerPatchPolicy`: the PatchPolicy and MaintenanceWindow controllers wired into a manager
 * (used by main.ts). A MaintenanceWindow spec change (or deletion) enqueues every PatchPolicy that
 * references it, so policies re-plan without being edited.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { MaintenanceWindow } from '../../api/maintenancewindow.js';
import {
  PATCH_POLICY_KIND,
  PATCH_POLICY_PLURAL,
  SCAN_REQUESTED_ANNOTATION,
  type PatchPolicy,
} from '../../api/patchpolicy.js';
import { RECONCILE_REQUESTED_ANNOTATION } from '../../api/common.js';
import type { CloudClients } from '../../cloud/types.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import { QueuePriority } from '../../runtime/workqueue.js';
import { registerMaintenanceWindow } from '../maintenancewindow/register.js';
import type { ControllerMetrics, EventSink, ObjectReader } from '../shared/deps.js';
import { kubeSecretReader } from '../shared/secrets.js';
import type { InstanceLock } from '../shared/lock.js';
import { registerKind } from '../shared/register.js';
import { PatchMetrics } from './metrics.js';
import { PatchPolicyReconciler, type PatchPolicyOptions } from './reconciler.js';

/** What the PatchPolicy controller needs from main.ts. */
export interface PatchPolicyRegistration {
  kubeConfig: KubeConfig;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  /** Registry for the `ecsops_patch_*` gauges. */
  registry: Registry;
  namespace?: string;
  workers: number;
  options?: Partial<PatchPolicyOptions>;
  /** The process's cross-kind per-instance lock (this kind becomes a source of holders). */
  lock?: InstanceLock;
}

/** Adds the PatchPolicy and MaintenanceWindow controllers to `manager` (before `manager.start()`). */
export function registerPatchPolicy(
  manager: Manager,
  deps: PatchPolicyRegistration,
): { policies: ControllerHandle<PatchPolicy>; windows: ControllerHandle<MaintenanceWindow> } {
  const late: { policies?: ControllerHandle<PatchPolicy>; reconciler?: PatchPolicyReconciler } = {};
  const windows = registerMaintenanceWindow(manager, {
    kubeConfig: deps.kubeConfig,
    events: deps.events,
    metrics: deps.metrics,
    workers: 1,
    ...(deps.namespace !== undefined ? { namespace: deps.namespace } : {}),
    onChange: (ns, name) => {
      for (const ref of late.reconciler?.referencing(ns, name) ?? [])
        late.policies?.queue.add(`${ref.namespace}/${ref.name}`, QueuePriority.change);
    },
  });
  const windowReader: ObjectReader<MaintenanceWindow> = {
    get: (ns, name) => windows.cache.get(ns, name),
    list: () => windows.cache.list(),
  };
  const patchMetrics = new PatchMetrics(deps.registry);
  late.policies = registerKind<PatchPolicy>(manager, deps.kubeConfig, {
    name: 'patchpolicy',
    kind: PATCH_POLICY_KIND,
    plural: PATCH_POLICY_PLURAL,
    workers: deps.workers,
    ...(deps.namespace !== undefined ? { namespace: deps.namespace } : {}),
    annotations: [RECONCILE_REQUESTED_ANNOTATION, SCAN_REQUESTED_ANNOTATION],
    ...(deps.lock ? { lock: deps.lock } : {}),
    // An execution the shared listing sees finished wakes its policy (oos-tracker.ts).
    cloud: deps.cloud,
    build: ({ objects, kube }) => {
      late.reconciler = new PatchPolicyReconciler({
        objects,
        kube,
        windows: windowReader,
        cloud: deps.cloud,
        events: deps.events,
        metrics: deps.metrics,
        patchMetrics,
        secrets: kubeSecretReader(deps.kubeConfig), // spec.analysis.prometheus token / CA
        ...(deps.options ? { options: deps.options } : {}),
        ...(deps.lock ? { lock: deps.lock } : {}),
      });
      return late.reconciler;
    },
  });
  return { policies: late.policies, windows };
}
