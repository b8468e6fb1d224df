/**
 * Wires one kind into the manager: its informer cache, its status patcher and its reconciler.
 * Each kind's `register<Kind>` calls {@link registerKind}, so `main.ts` adds a kind in one line.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  GROUP,
  OWNER_KIND_TAG,
  OWNER_NAME_TAG,
  OWNER_UID_TAG,
  RECONCILE_REQUESTED_ANNOTATION,
  VERSION,
} from '../../api/common.js';
import { BudgetUnsatisfiableReason } from '../../api/conditions.js';
import { getCondition, type Condition } from '../../runtime/conditions.js';
import type { Reconciler } from '../../runtime/controller.js';
import { objectKey, type InformerCache, type InformerEvents } from '../../runtime/informer.js';
import { generationChangedPredicate, type ControllerHandle, type Manager } from '../../runtime/manager.js';
import { StatusPatcher } from '../../runtime/status.js';
import type { KubeWriter, ObjectReader, Resource } from './deps.js';
import type { CloudClients } from '../../cloud/types.js';
import { QueuePriority } from '../../runtime/workqueue.js';
import type { InstanceLock } from './lock.js';

/** One kind to register. */
export interface KindRegistration<T extends Resource> {
  /** Controller name (lower case): metric label, log field. */
  name: string;
  kind: string;
  plural: string;
  workers: number;
  /** Namespace to watch; undefined = all. */
  namespace?: string;
  /**
   * Label selector of the informer; undefined = the manager's (`--watch-label-selector`), `''` =
   * every object whatever the shard selector (objects other kinds reference, like
   * MaintenanceWindows).
   */
  labelSelector?: string;
  /** Annotations whose change triggers a reconcile (besides generation); default the reconcile annotation. */
  annotations?: readonly string[];
  /** The process's cross-kind instance lock: this kind's objects become a source of holders. */
  lock?: InstanceLock;
  /**
   * The cloud layer: an execution of this kind that its fleet view sees finish enqueues its owner
   * at once (poll priority), so a result shows in status without waiting for the owner's poll delay.
   */
  cloud?: CloudClients;
  /** Builds the reconciler from the informer cache reader and the status writer. */
  build(io: { objects: ObjectReader<T>; kube: KubeWriter<T> }): Reconciler;
}

/**
 * Adds a controller for `reg.kind` to `manager` (must be called before `manager.start()`).
 * Status-only updates do not enqueue (generation + annotation predicate, Flux style).
 * @returns the controller handle (cache and queue).
 */
export function registerKind<T extends Resource>(
  manager: Manager,
  kubeConfig: KubeConfig,
  reg: KindRegistration<T>,
): ControllerHandle<T> {
  const holder: { cache?: InformerCache<T> } = {};
  const objects: ObjectReader<T> = {
    get: (namespace, name) => holder.cache?.get(namespace, name),
    list: () => holder.cache?.list() ?? [],
  };
  const kube = new StatusPatcher({
    kubeConfig,
    group: GROUP,
    version: VERSION,
    plural: reg.plural,
  }) as unknown as KubeWriter<T>;
  const handle = manager.addController<T>({
    name: reg.name,
    group: GROUP,
    version: VERSION,
    plural: reg.plural,
    kind: reg.kind,
    ...(reg.namespace !== undefined ? { namespace: reg.namespace } : {}),
    ...(reg.labelSelector !== undefined ? { labelSelector: reg.labelSelector } : {}),
    workers: reg.workers,
    reconciler: reg.build({ objects, kube }),
    updatePredicate: generationChangedPredicate(reg.annotations ?? [RECONCILE_REQUESTED_ANNOTATION]),
  });
  holder.cache = handle.cache;
  // Waiters of this kind are woken (change priority) when a hold they wait for ends (lock.ts).
  if (reg.lock)
    reg.lock.addSource(reg.kind, holdSource(manager, reg, handle.cache), (key) =>
      handle.queue.add(key, QueuePriority.change),
    );
  // A budget changed or went away: objects Stalled BudgetUnsatisfiable re-check (a rechecked reason).
  reg.lock?.budgets?.onChange(() => {
    for (const obj of objects.list()) {
      const conditions = (obj.status as { conditions?: Condition[] } | undefined)?.conditions;
      const stalled = getCondition(conditions, 'Stalled');
      if (stalled?.status === 'True' && stalled.reason === BudgetUnsatisfiableReason)
        handle.queue.add(objectKey(obj));
    }
  });
  reg.cloud?.onExecutionsFinished?.((finished) => {
    for (const e of finished) {
      if (e.tags[OWNER_KIND_TAG] !== reg.kind) continue;
      const owner = ownerOf(e.tags, objects);
      if (owner) handle.queue.add(owner, QueuePriority.poll);
    }
  });
  return handle;
}

/**
 * Where the instance lock reads this kind's holds: the controller's own cache, or — when this
 * process is one shard (`--watch-label-selector`) and the kind follows the shard selector — a
 * watch-only cache of EVERY object of the kind, so a shard sees the holds of resources other
 * shards reconcile (ADR 0008). Reconciles still read only the shard's own cache.
 */
function holdSource<T extends Resource>(
  manager: Manager,
  reg: KindRegistration<T>,
  own: ObjectReader<T> & InformerEvents<T>,
): ObjectReader<Resource> & InformerEvents<Resource> {
  if (reg.labelSelector !== undefined || manager.shardSelector() === '')
    return own as unknown as ObjectReader<Resource> & InformerEvents<Resource>;
  const all = manager.addCache<Resource>({
    name: `${reg.name}-holds`,
    group: GROUP,
    version: VERSION,
    plural: reg.plural,
    ...(reg.namespace !== undefined ? { namespace: reg.namespace } : {}),
    labelSelector: '',
  });
  return all;
}

/**
 * The workqueue key (`namespace/name`) of the object an execution's owner tags name, when the
 * cache holds it with the tagged UID (the name tag is `namespace.name`; namespaces have no dots).
 */
function ownerOf(
  tags: Readonly<Record<string, string>>,
  objects: ObjectReader<Resource>,
): string | undefined {
  const tag = tags[OWNER_NAME_TAG] ?? '';
  const dot = tag.indexOf('.');
  if (dot <= 0) return undefined;
  const namespace = tag.slice(0, dot);
  const name = tag.slice(dot + 1);
  const obj = objects.get(namespace, name);
  return obj && obj.metadata.uid === tags[OWNER_UID_TAG] ? `${namespace}/${name}` : undefined;
}
