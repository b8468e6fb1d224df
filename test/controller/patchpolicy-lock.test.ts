/**
 * PatchPolicy installs take the cross-kind instance lock: instances another kind is acting on
 * (recorded in that resource's status.executions[].lockKeys) are not patched until it is done;
 * the policy says who it waits for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { encodeLockKeys, InstanceLock } from '../../src/controllers/shared/lock.js';
import { fleetIds, MemoryStore } from '../harness/fast.js';
import {
  cond,
  patchSeed,
  reachInstallWindow,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

describe('PatchPolicy and the cross-kind instance lock', () => {
  let s: PatchStack;
  const lock = new InstanceLock();
  const others = new MemoryStore<Resource>();
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('lp', 0, 4), lock });
    lock.addSource('AppRelease', others);
  });
  afterAll(() => s.stop());

  it('patches only the free instances and waits, naming the holder, for the held ones', async () => {
    const holder = others.apply({
      apiVersion: 'ecsops.io/v1alpha1',
      kind: 'AppRelease',
      metadata: { name: 'shop', namespace: 'team-a' },
      spec: {},
    });
    await others.patchStatus(holder, {
      executions: [
        {
          executionId: 't-1',
          action: 'deploy',
          clientToken: 'x',
          startTime: '2026-06-01T00:00:00Z',
          lockKeys: encodeLockKeys(fleetIds('lp', 1, 2)),
        },
      ],
    });
    const created = await reachInstallWindow(s, 'locked', 'lp');
    const uid = created.metadata.uid ?? '';
    let obj = await s.settle('locked');
    const installs = await s.executions(uid, 'install');
    const patched = installs.flatMap((e) => e.items.map((i) => i.instanceId)).sort();
    expect(patched).toEqual(fleetIds('lp', 3, 4));
    expect(cond(obj, 'Ready')).toMatchObject({ reason: 'WaitingForInstanceLock' });
    expect(cond(obj, 'Ready')?.message).toContain('AppRelease team-a/shop');

    // The other resource finishes: the held instances are patched in the same window.
    await others.patchStatus(others.get('team-a', 'shop') as Resource, {});
    s.advanceTo('2026-06-05T17:10:00Z');
    await s.reconcile('locked');
    obj = await s.settle('locked');
    const all = (await s.executions(uid, 'install')).flatMap((e) => e.items.map((i) => i.instanceId)).sort();
    expect(all).toEqual(fleetIds('lp', 1, 4));
    expect(cond(obj, 'Compliant')?.status).toBe('True');
  });
});
