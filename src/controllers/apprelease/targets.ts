/**
 * AppRelease target steps: resolve `spec.targets` and read each target's revision tag, and stall
 * the newer of two AppReleases of the same application on overlapping instances.
 */
import { ConflictingReleaseReason } from '../../api/conditions.js';
import { StalledError } from '../../runtime/errors.js';
import { disruptivePolicy, noteKubernetesNodes, screenKubernetesNodes } from '../shared/kubernetes-nodes.js';
import { resolveTargets, targetMaxAgeMs } from '../shared/targets.js';
import { intervalMs } from '../shared/driver.js';
import { reconcileAppDirConflicts } from './safety.js';
import { revisionTagKey, type AppContext, type AppScope } from './scope.js';

/**
 * How old the targets of a release whose rollout or rollback runs may be, ms: a host tagged into
 * the target mid-rollout joins its next batch (reads of several releases rolling out at once are
 * still shared).
 */
export const ROLLOUT_TARGET_MAX_AGE_MS = 1_000;

/**
 * The targets of `s` through the region's fleet view: listed IDs from its batched instance reads
 * (one ECS DescribeInstances per 100 IDs across every resource reading at once), tag targets from
 * its listing per tag key; no older than {@link targetMaxAgeMs} (fresh for a new generation or a
 * requested reconcile; {@link ROLLOUT_TARGET_MAX_AGE_MS} while a rollout or rollback runs, else at
 * most half of `spec.interval`, so a newly tagged instance is enrolled within one interval). The
 * records carry the instances' tags (with the tags this process wrote, `RegionFleet.recordTags`),
 * so the revision tags cost no further call. `missing`: see {@link resolveTargets}.
 */
export function readTargets(s: AppScope, missing?: 'skip'): ReturnType<typeof resolveTargets> {
  const { spec } = s.obj;
  const phase = s.phase ?? s.obj.status?.phase;
  const rolling = s.inFlight.length > 0 || phase === 'Progressing' || phase === 'RollingBack';
  return resolveTargets(s.ecs, spec.regionId, spec.targets, {
    ...(missing ? { missing } : {}),
    fleet: {
      view: s.fleet,
      maxAgeMs: targetMaxAgeMs(s, rolling ? ROLLOUT_TARGET_MAX_AGE_MS : intervalMs(spec.interval) / 2),
      // Tag-key listings shared region-wide: once per half interval, not per reconcile.
      listingMaxAgeMs: rolling ? ROLLOUT_TARGET_MAX_AGE_MS : intervalMs(spec.interval) / 2,
      ...s.view,
    },
  });
}

/**
 * reconcileTargets resolves spec.targets (stalls on missing listed IDs), drops ACK worker nodes
 * unless spec.allowKubernetesNodes (warning once per change of that set), and reads each target's
 * revision tag.
 */
export async function reconcileTargets(k: AppContext, s: AppScope): Promise<void> {
  s.nodeScreen = screenKubernetesNodes(await readTargets(s), disruptivePolicy(s.obj.spec));
  s.targets = s.nodeScreen.targets;
  noteKubernetesNodes(k.events, s.obj, s.obj.status, s.nodeScreen);
  readTags(s);
  s.ledger.retain(new Set(s.targets.map((t) => t.instanceId)));
  s.resolved = true;
}

/**
 * Sets `s.tags` from the resolved targets' revision tags, keeping the tags this reconcile wrote
 * (the tracked-work step runs first and may just have tagged or untagged instances).
 */
export function readTags(s: AppScope): void {
  const key = revisionTagKey(s.obj.spec.application);
  const written = s.tags;
  s.tags = new Map(s.targets.map((t) => [t.instanceId, t.instance.tags.find((x) => x.key === key)?.value]));
  for (const [id, value] of written) s.tags.set(id, value);
}

/**
 * reconcileConflicts stalls the newer of two AppReleases that deploy the same application on
 * overlapping instances (`ConflictingRelease`; the older one keeps them), or whose appDirs overlap
 * there (`ConflictingResource`, see safety.ts). Re-checked every 10
 * minutes, and whenever either resource changes.
 */
export async function reconcileConflicts(k: AppContext, s: AppScope): Promise<void> {
  const { obj } = s;
  const claim = {
    uid: obj.metadata.uid ?? '',
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    createdAt: String(obj.metadata.creationTimestamp ?? ''),
    subject: `${obj.spec.regionId}/${obj.spec.application}`,
    fingerprint: obj.metadata.uid ?? '',
    instanceIds: new Set(s.targets.map((t) => t.instanceId)),
  };
  k.claims.set(claim);
  const conflict = k.claims.conflictFor(claim);
  if (conflict) {
    const h = conflict.holder;
    throw new StalledError(
      ConflictingReleaseReason,
      `AppRelease ${h.namespace}/${h.name} (older) deploys application ${obj.spec.application} on ${conflict.overlap} of the same instance(s); it keeps them. Make the targets disjoint or delete one of them.`,
    );
  }
  reconcileAppDirConflicts(k, s);
}
