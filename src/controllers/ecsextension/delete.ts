/**
 * EcsExtension deletion step (the driver calls it while the finalizer is present, the object is
 * not suspended and none of its work is in flight: the driver waits that out first): Orphan (or
 * Observe mode) is done at once; Uninstall removes the package from every reachable instance that
 * has it (batches of 50) through the kit's start path (instances another resource holds wait for
 * it), waits for those executions, then reports done. Unreachable instances cannot be uninstalled
 * and are skipped with a Warning Event.
 */
import { UninstallSkippedEvent, DeleteAction } from '../../api/events.js';
import type { DeleteResult } from '../shared/driver.js';
import { lockWaitOf } from '../shared/lock.js';
import { resolveTargets } from '../shared/targets.js';
import { readStates, type ExtContext, type ExtScope } from './phases.js';

/** reconcileDelete: one step of the deletion path; see the module comment. */
export async function reconcileDelete(k: ExtContext, scope: ExtScope): Promise<DeleteResult> {
  const { obj } = scope;
  const { spec } = obj;
  if ((spec.deletionPolicy ?? 'Orphan') === 'Orphan' || spec.mode === 'Observe') return { done: true };

  // Listed instances that no longer exist cannot hold the package: uninstall from the rest.
  scope.targets = await resolveTargets(scope.ecs, spec.regionId, spec.targets, { missing: 'skip' });
  const reachable = scope.targets.filter((t) => t.reachable).map((t) => t.instanceId);
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
    const out = await k.work.start(scope, {
      round: scope.sequence,
      action: 'uninstall',
      instanceIds: installed,
      describe: `uninstall ${spec.packageName}`,
    });
    if (scope.inFlight.length === 0) scope.sequence -= 1; // every instance held: no round
    scope.lockWait = lockWaitOf(out.held) ?? scope.lockWait;
  }
  return { done: false };
}
