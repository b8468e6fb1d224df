/**
 * AppRelease deletion step (the driver calls it while the finalizer is present, the object is not
 * suspended and none of its invocations is in flight: the driver waits those out first): `Orphan`
 * is done at once (the application keeps running, its revision tag stays); `Uninstall` runs the
 * wrapper's uninstall (the current revision's stop hook, then removing what the wrapper owns in
 * appDir, and appDir once empty) through the kit's start path on every reachable target carrying
 * the revision tag or left by a failed deploy or
 * rollback (its files may be on disk) that no other resource holds, removes the tag, and reports
 * done when nothing is left. Unreachable instances and those whose uninstall failed are skipped
 * with a Warning Event.
 */
import { DeleteAction, UninstallSkippedEvent } from '../../api/events.js';
import type { DeleteResult } from '../shared/driver.js';
import { listIds } from '../shared/targets.js';
import { actionOfMessage, type AppContext, type AppScope } from './scope.js';
import { checkHostInput } from './safety.js';
import { readTags, readTargets } from './targets.js';

/**
 * reconcileDelete: one step of the deletion path; see the module comment. Once the application
 * part is done, the OOS encrypted parameter named in `status.secretParameter` is deleted (one
 * already gone is success); a failed delete throws, so the finalizer stays and it is retried.
 */
export async function reconcileDelete(k: AppContext, s: AppScope): Promise<DeleteResult> {
  const r = await deleteApplication(k, s);
  const parameter = s.secretParameter?.name;
  if (r.done && parameter) {
    await s.oos().deleteSecretParameter(parameter); // an absent parameter is success
    delete s.secretParameter;
  }
  return r;
}

async function deleteApplication(k: AppContext, s: AppScope): Promise<DeleteResult> {
  const { obj } = s;
  if ((obj.spec.deletionPolicy ?? 'Orphan') === 'Orphan') return { done: true };
  checkHostInput(obj.spec); // never uninstall from an appDir the rules refuse (retried: fix or Orphan)
  s.targets = await readTargets(s, 'skip');
  readTags(s);
  s.resolved = true;
  // Installed: tagged, or touched by a deploy or rollback that failed (files may be on disk).
  const touched = (id: string): boolean => {
    const action = actionOfMessage(s.ledger.get(id)?.message);
    return s.tags.get(id) !== undefined || action === 'deploy' || action === 'rollback';
  };
  const installed = s.targets.filter((t) => touched(t.instanceId));
  const unreachable = installed.filter((t) => !t.reachable).map((t) => t.instanceId);
  const reachable = installed.filter((t) => t.reachable).map((t) => t.instanceId);
  const uninstallFailed = (id: string) => actionOfMessage(s.ledger.get(id)?.message) === 'uninstall';
  const failed = s.targets
    .filter((t) => t.reachable && uninstallFailed(t.instanceId))
    .map((t) => t.instanceId);
  const todo = reachable.filter((id) => !uninstallFailed(id));
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
    return { done: true };
  }
  await k.work.start(s, {
    round: 0,
    action: 'uninstall',
    instanceIds: todo,
    describe: `uninstall ${obj.spec.application}`,
    tokenScope: 'uninstall',
  });
  return { done: false };
}
