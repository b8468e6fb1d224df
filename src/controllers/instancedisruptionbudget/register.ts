/** `registerInstanceDisruptionBudget`: the InstanceDisruptionBudget controller wired into a manager. */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  INSTANCE_DISRUPTION_BUDGET_KIND,
  INSTANCE_DISRUPTION_BUDGET_PLURAL,
  type InstanceDisruptionBudget,
} from '../../api/instancedisruptionbudget.js';
import type { CloudClients } from '../../cloud/types.js';
import type { ControllerHandle, Manager } from '../../runtime/manager.js';
import type { DisruptionBudgets } from '../shared/budget.js';
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
  /** The process's per-instance lock (who holds what); its `budgets` must be `budgets`. */
  lock: InstanceLock;
  budgets: DisruptionBudgets;
  workers: number;
}

/**
 * Adds the InstanceDisruptionBudget controller to `manager` (before `manager.start()`): a
 * cluster-wide informer (the kind is cluster-scoped; `--namespace` does not narrow it) whose cache
 * becomes the budgets' source, read regardless of `--watch-label-selector` (every shard's starts
 * consult every budget).
 */
export function registerInstanceDisruptionBudget(
  manager: Manager,
  deps: InstanceDisruptionBudgetRegistration,
): ControllerHandle<InstanceDisruptionBudget> {
  return registerKind<InstanceDisruptionBudget>(manager, deps.kubeConfig, {
    name: 'instancedisruptionbudget',
    kind: INSTANCE_DISRUPTION_BUDGET_KIND,
    plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
    workers: deps.workers,
    labelSelector: '',
    build: ({ objects, kube }) => {
      deps.budgets.setSource(objects);
      return new InstanceDisruptionBudgetReconciler({
        objects,
        kube,
        events: deps.events,
        metrics: deps.metrics,
        cloud: deps.cloud,
        lock: deps.lock,
        budgets: deps.budgets,
      });
    },
  });
}
