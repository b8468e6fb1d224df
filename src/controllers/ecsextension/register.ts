/** `registerEcsExtension`: the EcsExtension controller wired into a manager (used by main.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { ECS_EXTENSION_KIND, ECS_EXTENSION_PLURAL, type EcsExtension } from '../../api/ecsextension.js';
import type { CloudClients } from '../../cloud/types.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import type { ControllerMetrics, EventSink } from '../shared/deps.js';
import type { InstanceLock } from '../shared/lock.js';
import { registerKind } from '../shared/register.js';
import { EcsExtensionReconciler, type EcsExtensionOptions } from './reconciler.js';

/** What the EcsExtension controller needs from main.ts. */
export interface EcsExtensionRegistration {
  kubeConfig: KubeConfig;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  namespace?: string;
  workers: number;
  options?: Partial<EcsExtensionOptions>;
  /** The process's cross-kind per-instance lock (this kind becomes a source of holders). */
  lock?: InstanceLock;
}

/** Adds the EcsExtension controller to `manager` (before `manager.start()`). */
export function registerEcsExtension(
  manager: Manager,
  deps: EcsExtensionRegistration,
): ControllerHandle<EcsExtension> {
  return registerKind<EcsExtension>(manager, deps.kubeConfig, {
    name: 'ecsextension',
    kind: ECS_EXTENSION_KIND,
    plural: ECS_EXTENSION_PLURAL,
    workers: deps.workers,
    ...(deps.namespace !== undefined ? { namespace: deps.namespace } : {}),
    ...(deps.lock ? { lock: deps.lock } : {}),
    cloud: deps.cloud,
    build: ({ objects, kube }) =>
      new EcsExtensionReconciler({
        objects,
        kube,
        cloud: deps.cloud,
        events: deps.events,
        metrics: deps.metrics,
        ...(deps.options ? { options: deps.options } : {}),
        ...(deps.lock ? { lock: deps.lock } : {}),
      }),
  });
}
