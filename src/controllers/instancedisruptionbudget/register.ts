/** `registerInstanceDisruptionBudget`: the InstanceDisruptionBudget controller wired into a manager. */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  INSTANCE_DISRUPTION_BUDGET_KIND,
  INSTANCE_DISRUPTION_BUDGET_PLURAL,
  type InstanceDisruptionBudget,
} from '../../api/instancedisruptionbudget.js';
import type { CloudClients } from '../../cloud/types.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import type { ControllerMetrics, EventSink } from '../shared/deps.js';
import type { InstanceLock } from '../shared/lock.js';
import { registerKind } from '../shared/register.js';
import { InstanceDisruptionBudgetReconciler } from './reconciler.js';

/** What the InstanceDisruptionBudget controller needs. */
export interface InstanceDisruptionBudgetRegistration {
  kubeConfig: KubeConfig;
  cloud: CloudClients;
  events: EventSink;
  metrics: ControllerMetrics;
  /**
   * The process's per-instance lock (who holds what), its `budgets` set before any kind registers
   * (so every kind's start path consults them): this controller resolves them.
   */
  lock: InstanceLock;
  workers: number;
}

/**
 * Adds the InstanceDisruptionBudget controller to `manager` (before `manager.start()`): a
 * cluster-wide informer (the kind is cluster-scoped; `--namespace` does not narrow it) whose cache
 * becomes the budgets' source, read regardless of `--watch-label-selector` (every shard's starts
 * consult every budget).
 * @throws Error when `deps.lock.budgets` is not set.
 */
export function registerInstanceDisruptionBudget(
  manager: Manager,
  deps: InstanceDisruptionBudgetRegistration,
): ControllerHandle<InstanceDisruptionBudget> {
  const budgets = deps.lock.budgets;
  if (!budgets) throw new Error('registerInstanceDisruptionBudget: deps.lock.budgets is not set');
  return registerKind<InstanceDisruptionBudget>(manager, deps.kubeConfig, {
    name: 'instancedisruptionbudget',
    kind: INSTANCE_DISRUPTION_BUDGET_KIND,
    plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
    workers: deps.workers,
    labelSelector: '',
    build: ({ objects, kube }) => {
      budgets.setSource(objects);
      return new InstanceDisruptionBudgetReconciler({
        objects,
        kube,
        events: deps.events,
        metrics: deps.metrics,
        cloud: deps.cloud,
        lock: deps.lock,
      });
    },
  });
}
