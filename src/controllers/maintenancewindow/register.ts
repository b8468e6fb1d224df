/** `registerMaintenanceWindow`: the MaintenanceWindow controller wired into a manager. */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  MAINTENANCE_WINDOW_KIND,
  MAINTENANCE_WINDOW_PLURAL,
  type MaintenanceWindow,
} from '../../api/maintenancewindow.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import type { ControllerMetrics, EventSink } from '../shared/deps.js';
import { registerKind } from '../shared/register.js';
import { MaintenanceWindowReconciler } from './reconciler.js';

/** What the MaintenanceWindow controller needs. */
export interface MaintenanceWindowRegistration {
  kubeConfig: KubeConfig;
  events: EventSink;
  metrics: ControllerMetrics;
  namespace?: string;
  workers: number;
  /** Called when a window's spec changed or it was deleted (see MaintenanceWindowDeps.onChange). */
  onChange?: (namespace: string, name: string) => void;
}

/** Adds the MaintenanceWindow controller to `manager` (before `manager.start()`). */
export function registerMaintenanceWindow(
  manager: Manager,
  deps: MaintenanceWindowRegistration,
): ControllerHandle<MaintenanceWindow> {
  return registerKind<MaintenanceWindow>(manager, deps.kubeConfig, {
    name: 'maintenancewindow',
    kind: MAINTENANCE_WINDOW_KIND,
    plural: MAINTENANCE_WINDOW_PLURAL,
    workers: deps.workers,
    ...(deps.namespace !== undefined ? { namespace: deps.namespace } : {}),
    // Windows are shared by the policies of every shard: read (and reconciled, with the same
    // computed status) regardless of --watch-label-selector.
    labelSelector: '',
    build: ({ objects, kube }) =>
      new MaintenanceWindowReconciler({
        objects,
        kube,
        events: deps.events,
        metrics: deps.metrics,
        ...(deps.onChange ? { onChange: deps.onChange } : {}),
      }),
  });
}
