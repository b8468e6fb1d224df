/**
 * AppRelease deletion step (the driver calls it while the finalizer is present and the object is
 * not suspended): `Orphan` is done at once (the application keeps running, its revision tag stays);
 * `Uninstall` runs the wrapper's uninstall (the current revision's stop hook, then `rm -rf appDir`)
 * on every reachable target carrying the revision tag, removes the tag, and reports done when
 * nothing is left. Unreachable instances are skipped with a Warning Event.
 */
import { DeleteAction, UninstallSkippedEvent } from '../../api/events.js';
import type { DeleteResult } from '../shared/driver.js';
import { listIds, resolveTargets } from '../shared/targets.js';
import { reconcileInvocations, revisionTagKey, type AppContext, type AppScope } from './phases.js';

/** reconcileDelete: one step of the deletion path; see the module comment. */
export async function reconcileDelete(k: AppContext, s: AppScope): Promise<DeleteResult> {
  const { obj } = s;
  if ((obj.spec.deletionPolicy ?? 'Orphan') === 'Orphan') {
    k.lock?.release(obj.metadata.uid ?? '');
    return { done: true };
  }
  s.targets = await resolveTargets(s.ecs, obj.spec.regionId, obj.spec.targets, { missing: 'skip' });
  const key = revisionTagKey(obj.spec.application);
  s.tags = new Map(s.targets.map((t) => [t.instanceId, t.instance.tags.find((x) => x.key === key)?.value]));
  s.resolved = true;
  await reconcileInvocations(k, s);
  if (s.inFlight.length > 0) return { done: false };
  const installed = s.targets
    .filter((t) => t.reachable && s.tags.get(t.instanceId) !== undefined)
    .map((t) => t.instanceId);
  const unreachable = s.targets
    .filter((t) => !t.reachable && s.tags.get(t.instanceId) !== undefined)
    .map((t) => t.instanceId);
  const failed = installed.filter((id) => s.ledger.has(id));
  const todo = installed.filter((id) => !s.ledger.has(id));
  if (todo.length === 0) {
    if (unreachable.length + failed.length > 0) {
      void k.events.event(
        obj,
        'Warning',
        UninstallSkippedEvent,
        DeleteAction,
        `${unreachable.length} unreachable and ${failed.length} failed instance(s) were not uninstalled: ${listIds([...unreachable, ...failed])}`,
      );
    }
    k.lock?.release(obj.metadata.uid ?? '');
    return { done: true };
  }
  const free = k.lock ? k.lock.check(obj, todo).free : todo;
  if (free.length === 0) return { done: false };
  const sink: typeof s.inFlight = [];
  try {
    await s.tracker.start(
      obj,
      {
        round: 0,
        action: 'uninstall',
        instanceIds: free,
        describe: `uninstall ${obj.spec.application}`,
        tokenScope: 'uninstall',
      },
      sink,
      s.now,
    );
  } finally {
    s.inFlight.push(...sink);
    k.lock?.hold(
      obj,
      s.inFlight.flatMap((w) => w.instanceIds),
    );
  }
  return { done: false };
}
