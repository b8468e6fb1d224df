/**
 * EcsExtension deletion step (the driver calls it while the finalizer is present and the object
 * is not suspended): Orphan (or Observe mode) is done at once; Uninstall removes the package from
 * every reachable instance that has it (batches of 50), waits for those executions, then reports
 * done. Unreachable instances cannot be uninstalled and are skipped with a Warning Event.
 */
import { UninstallSkippedEvent, DeleteAction } from '../../api/events.js';
import { intervalMs, type DeleteResult } from '../shared/driver.js';
import { resolveTargets } from '../shared/targets.js';
import { trackedIds } from '../shared/work.js';
import { reconcileExecutions, readStates, type ExtContext, type ExtScope } from './phases.js';

/** reconcileDelete: one step of the deletion path; see the module comment. */
export async function reconcileDelete(k: ExtContext, scope: ExtScope): Promise<DeleteResult> {
  const { obj } = scope;
  const { spec } = obj;
  if ((spec.deletionPolicy ?? 'Orphan') === 'Orphan' || spec.mode === 'Observe') return { done: true };

  // Listed instances that no longer exist cannot hold the package: uninstall from the rest.
  scope.targets = await resolveTargets(scope.ecs, spec.regionId, spec.targets, { missing: 'skip' });
  await reconcileExecutions(k, scope);
  if (scope.inFlight.length === 0)
    scope.inFlight.push(...(await scope.tracker.adopt(obj, trackedIds(obj), scope.now)));
  const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
  if (scope.inFlight.length > 0) {
    scope.states = await readStates(scope, reachable, intervalMs(spec.interval) / 2);
    return { done: false };
  }
  scope.states = await readStates(scope, reachable, 0);
  const installed = reachable.filter((id) => scope.states?.get(id));
  if (installed.length === 0) {
    const skipped = scope.targets.filter((t) => !t.reachable).map((t) => t.instanceId);
    if (skipped.length > 0) {
      void k.events.event(
        obj,
        'Warning',
        UninstallSkippedEvent,
        DeleteAction,
        `${skipped.length} unreachable instance(s) were not uninstalled: ${skipped.slice(0, 5).join(', ')}`,
      );
    }
    return { done: true };
  }
  if (!scope.ledger.inBackoff(scope.now)) {
    scope.sequence += 1;
    await scope.tracker.start(
      obj,
      {
        round: scope.sequence,
        action: 'uninstall',
        instanceIds: installed,
        describe: `uninstall ${spec.packageName}`,
      },
      scope.inFlight,
      scope.now,
    );
  }
  return { done: false };
}
