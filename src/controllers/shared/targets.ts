/**
 * Target resolution shared by every kind: `spec.targets` (instance IDs or tags, minus
 * exclusions) → the instances that exist in the region, each marked reachable or not.
 *
 * Reads ECS DescribeInstances (IDs in batches of 100, or tag filters) and
 * DescribeCloudAssistantStatus for the Running ones; with the region's fleet view, through its
 * shared reads (IDs batched across resources, tag targets from one listing per tag key). Tag
 * targets are re-resolved on every call, so newly tagged instances are enrolled without a spec
 * change (DESIGN §1).
 */
import type { Targets } from '../../api/common.js';
import { InstanceNotFoundReason, InvalidSpecReason } from '../../api/conditions.js';
import type { EcsApi, Instance, InstanceView, RegionFleet } from '../../cloud/index.js';
import { StalledError } from '../../runtime/errors.js';
import { toReconcileError } from './cloud-errors.js';

export interface ResolvedTarget {
  instanceId: string;
  instance: Instance;
  /** Running and Cloud Assistant online: OOS can act on it. */
  reachable: boolean;
  /** Why it is not reachable, e.g. `instance is Stopped`. */
  unreachableReason?: string;
}

/** Lists at most `max` IDs, then `(and N more)`. */
export function listIds(ids: readonly string[], max = 5): string {
  const head = ids.slice(0, max).join(', ');
  return ids.length > max ? `${head} (and ${ids.length - max} more)` : head;
}

/** How old instance status and Cloud Assistant state may be when targets are resolved, ms. */
export const TARGET_MAX_AGE_MS = 60_000;

/**
 * The age bound of a reconcile's target read, ms: 0 (read now, not from the shared tag listing
 * or instance records) for a new generation or a requested reconcile (`fresh`), so an object
 * created right after its instances were tagged sees them; otherwise `TARGET_MAX_AGE_MS`, or
 * `bound` when that is lower.
 */
export function targetMaxAgeMs(scope: { fresh?: boolean }, bound = TARGET_MAX_AGE_MS): number {
  return scope.fresh ? 0 : Math.min(TARGET_MAX_AGE_MS, bound);
}

/**
 * Resolves `targets` in `regionId`.
 * @param options.missing what explicitly listed instance IDs that do not exist in the region
 *   mean: `stall` (default; wrong region or released instances — only a spec change fixes it) or
 *   `skip` (deletion: nothing to clean up there).
 * @returns targets sorted by instance ID.
 * @throws StalledError `InstanceNotFound` for missing listed instance IDs when `missing` is `stall`.
 * @throws TransientError / StalledError mapped from cloud failures (see `toReconcileError`).
 */
export async function resolveTargets(
  ecs: EcsApi,
  regionId: string,
  targets: Targets,
  options: {
    missing?: 'stall' | 'skip';
    /**
     * Read listed instance IDs through the region's fleet view (batched with every other
     * resource's reads, data no older than `maxAgeMs`) instead of per-resource calls.
     */
    fleet?: {
      view: RegionFleet;
      maxAgeMs: number;
      /**
       * Age bound of the shared tag-key listing (tag targets), ms; default `maxAgeMs`. Drift checks
       * pass half their interval: a key is listed about twice per interval for every resource of
       * the region, while instance status and Cloud Assistant state keep `maxAgeMs`.
       */
      listingMaxAgeMs?: number;
      signal?: AbortSignal;
      owner?: string;
      minPriority?: number;
    };
  } = {},
): Promise<ResolvedTarget[]> {
  const excluded = new Set(targets.excludeInstanceIds ?? []);
  let instances: Instance[];
  try {
    if (targets.instanceIds && options.fleet) {
      const wanted = targets.instanceIds.filter((id) => !excluded.has(id));
      const { view, listingMaxAgeMs: _unused, ...read } = options.fleet;
      const views = wanted.length > 0 ? await view.instances(wanted, read) : new Map();
      const missing = wanted.filter((id) => !views.get(id)).sort();
      if (missing.length > 0 && options.missing !== 'skip') {
        throw new StalledError(
          InstanceNotFoundReason,
          `${missing.length} instance(s) not found in region ${regionId}: ${listIds(missing)}`,
        );
      }
      return wanted
        .map((id) => views.get(id))
        .filter((v): v is InstanceView => v !== undefined)
        .map((v) => targetOf(v.instance, v.online ?? false))
        .sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
    }
    if (targets.instanceIds) {
      const wanted = targets.instanceIds.filter((id) => !excluded.has(id));
      instances = wanted.length > 0 ? await ecs.describeInstances({ instanceIds: wanted }) : [];
      const found = new Set(instances.map((i) => i.instanceId));
      const missing = wanted.filter((id) => !found.has(id)).sort();
      if (missing.length > 0 && options.missing !== 'skip') {
        throw new StalledError(
          InstanceNotFoundReason,
          `${missing.length} instance(s) not found in region ${regionId}: ${listIds(missing)}`,
        );
      }
    } else if (targets.tags && targets.tags.length > 0) {
      const tags = targets.tags.map((t) =>
        t.value === undefined ? { key: t.key } : { key: t.key, value: t.value },
      );
      if (options.fleet) {
        // One listing per tag key shared by every selector of the key; Cloud Assistant state batched.
        const { view, listingMaxAgeMs, ...read } = options.fleet;
        // A forced read (maxAgeMs 0) lists the key now as well.
        const listing = { ...read, maxAgeMs: read.maxAgeMs > 0 ? (listingMaxAgeMs ?? read.maxAgeMs) : 0 };
        const tagged = (await view.taggedInstances(tags, listing)).filter((i) => !excluded.has(i.instanceId));
        const known = new Map(tagged.map((i) => [i.instanceId, i]));
        const views = tagged.length > 0 ? await view.instances([...known.keys()], read, known) : new Map();
        // An instance the batch read found gone (released since the tag listing) is no target.
        return tagged
          .map((i): InstanceView | undefined =>
            views.has(i.instanceId) ? views.get(i.instanceId) : { instance: i },
          )
          .filter((v): v is InstanceView => v !== undefined)
          .map((v) => targetOf(v.instance, v.online ?? false))
          .sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
      }
      instances = await ecs.describeInstances({ tags });
    } else {
      // Admission rejects this (CEL); an object stored before the rule must never mean "the whole region".
      throw new StalledError(InvalidSpecReason, 'spec.targets must set exactly one of instanceIds or tags');
    }
  } catch (err) {
    if (err instanceof StalledError) throw err;
    throw toReconcileError(err, 'ECS DescribeInstances');
  }
  instances = instances.filter((i) => !excluded.has(i.instanceId));
  return (await reachability(ecs, instances)).sort((a, b) =>
    a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0,
  );
}

/**
 * Marks each instance reachable (Running and Cloud Assistant online) or not, with one ECS
 * DescribeCloudAssistantStatus read for the Running ones.
 * @throws TransientError / StalledError mapped from cloud failures.
 */
async function reachability(ecs: EcsApi, instances: Instance[]): Promise<ResolvedTarget[]> {
  const running = instances.filter((i) => i.status === 'Running').map((i) => i.instanceId);
  let online = new Map<string, boolean>();
  if (running.length > 0) {
    try {
      const statuses = await ecs.describeCloudAssistantStatus(running);
      online = new Map(statuses.map((s) => [s.instanceId, s.online]));
    } catch (err) {
      throw toReconcileError(err, 'ECS DescribeCloudAssistantStatus');
    }
  }
  return instances.map((instance) => targetOf(instance, online.get(instance.instanceId) ?? false));
}

/** Reachable when Running and the Cloud Assistant agent is online; otherwise why not. */
function targetOf(instance: Instance, online: boolean): ResolvedTarget {
  if (instance.status !== 'Running') {
    return {
      instanceId: instance.instanceId,
      instance,
      reachable: false,
      unreachableReason: `instance is ${instance.status}`,
    };
  }
  if (!online) {
    return {
      instanceId: instance.instanceId,
      instance,
      reachable: false,
      unreachableReason: 'Cloud Assistant agent is offline',
    };
  }
  return { instanceId: instance.instanceId, instance, reachable: true };
}

/**
 * Re-reads whether `instanceIds` are reachable now (ECS DescribeInstances by ID +
 * DescribeCloudAssistantStatus). Used before classifying an instance whose execution item failed:
 * one that was stopped, or whose agent went offline, while the execution ran is Unreachable, not
 * Failed. Instances that no longer exist are reported unreachable (`instance not found`).
 * @returns one entry per requested ID.
 * @throws TransientError / StalledError mapped from cloud failures.
 */
export async function recheckReachability(
  ecs: EcsApi,
  instanceIds: readonly string[],
): Promise<
  Map<string, ResolvedTarget | { instanceId: string; reachable: false; unreachableReason: string }>
> {
  const out = new Map<
    string,
    ResolvedTarget | { instanceId: string; reachable: false; unreachableReason: string }
  >();
  if (instanceIds.length === 0) return out;
  let instances: Instance[];
  try {
    instances = await ecs.describeInstances({ instanceIds: [...instanceIds] });
  } catch (err) {
    throw toReconcileError(err, 'ECS DescribeInstances');
  }
  for (const t of await reachability(ecs, instances)) out.set(t.instanceId, t);
  for (const id of instanceIds) {
    if (!out.has(id))
      out.set(id, { instanceId: id, reachable: false, unreachableReason: 'instance not found' });
  }
  return out;
}
