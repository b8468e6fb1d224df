/** `registerAppRelease`: the AppRelease controller wired into a manager (used by main.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import {
  APP_RELEASE_KIND,
  APP_RELEASE_PLURAL,
  PROMOTE_REQUESTED_ANNOTATION,
  type AppRelease,
} from '../../api/apprelease.js';
import { RECONCILE_REQUESTED_ANNOTATION } from '../../api/common.js';
import type { CloudClients } from '../../cloud/types.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import type { ControllerMetrics, EventSink } from '../shared/deps.js';
import type { InstanceLock } from '../shared/lock.js';
import { registerKind } from '../shared/register.js';
import { AppReleaseMetrics } from './metrics.js';
import { AppReleaseReconciler, type AppReleaseOptions } from './reconciler.js';
import { kubeSecretReader } from '../shared/secrets.js';

/** What the AppRelease controller needs from main.ts. */
export interface AppReleaseRegistration {
  kubeConfig: KubeConfig;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  /** Registry for the `ecsops_apprelease_*` families. */
  registry: Registry;
  /** The process's cross-kind instance lock; AppRelease objects become a source of holders. */
  lock?: InstanceLock;
  namespace?: string;
  workers: number;
  options?: Partial<AppReleaseOptions>;
}

/**
 * Adds the AppRelease controller to `manager` (before `manager.start()`). Besides generation
 * changes, the reconcile and promote annotations enqueue an object.
 */
export function registerAppRelease(
  manager: Manager,
  deps: AppReleaseRegistration,
): ControllerHandle<AppRelease> {
  const appMetrics = new AppReleaseMetrics(deps.registry);
  return registerKind<AppRelease>(manager, deps.kubeConfig, {
    name: 'apprelease',
    kind: APP_RELEASE_KIND,
    plural: APP_RELEASE_PLURAL,
    workers: deps.workers,
    annotations: [RECONCILE_REQUESTED_ANNOTATION, PROMOTE_REQUESTED_ANNOTATION],
    ...(deps.namespace !== undefined ? { namespace: deps.namespace } : {}),
    ...(deps.lock ? { lock: deps.lock } : {}),
    build: ({ objects, kube }) =>
      new AppReleaseReconciler({
        objects,
        kube,
        cloud: deps.cloud,
        events: deps.events,
        metrics: deps.metrics,
        appMetrics,
        secrets: kubeSecretReader(deps.kubeConfig),
        ...(deps.lock ? { lock: deps.lock } : {}),
        ...(deps.options ? { options: deps.options } : {}),
      }),
  });
}
