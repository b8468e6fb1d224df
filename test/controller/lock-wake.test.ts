/**
 * Waiters wake when a hold ends (issue 23): an EcsExtension waiting for the cross-kind instance
 * lock is put on its workqueue the moment the holder releases the instances — its status write
 * without the lock keys (the informer update the lock observes) — not when its own requeue delay
 * elapses. The workqueue is the runtime's real one on a fake clock that never moves here, so a key
 * handed out can only come from the wake.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EcsExtension } from '../../src/api/ecsextension.js';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { InstanceLock } from '../../src/controllers/shared/lock.js';
import { FakeClock } from '../../src/runtime/clock.js';
import { QueuePriority, Workqueue } from '../../src/runtime/workqueue.js';
import {
  fleetIds,
  fleetSeed,
  isReady,
  NODE_PACKAGE,
  ready,
  startFastStack,
  type FastStack,
} from '../harness/fast.js';

const OTHER_PACKAGE = 'ACS-Extension-python-1853370294850619';

describe('a lock waiter wakes when the hold ends', () => {
  let s: FastStack;
  const lock = new InstanceLock();
  const clock = new FakeClock();
  const queue = new Workqueue({ name: 'ecsextension', clock });
  const ids = fleetIds('wk', 1, 10);

  beforeAll(async () => {
    const seed = fleetSeed('wk', 20);
    seed.packageTemplates = [
      ...(seed.packageTemplates ?? []),
      {
        name: OTHER_PACKAGE,
        versions: [{ version: 'v1', parameters: { version: { Type: 'String', Default: '3' } } }],
      },
    ];
    // Executions take a little real time, so the waiter really waits.
    s = await startFastStack({ seed, lock, timeScale: 0.002 });
    // As registerKind wires it: the kind's cache is a hold source, its waiters go to its queue.
    lock.addSource('EcsExtension', s.store as unknown as Parameters<InstanceLock['addSource']>[1], (key) =>
      queue.add(key, QueuePriority.change),
    );
    // The informer: every status write reaches the lock as an update event.
    const patch = s.store.patchStatus.bind(s.store);
    s.store.patchStatus = async (obj: EcsExtension, status) => {
      const out = await patch(obj, status);
      const now = s.store.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
      if (now) lock.observe(now as Resource);
      return out;
    };
  });
  afterAll(async () => {
    queue.shutDown();
    await s.stop();
  });

  it('enqueues the waiter as soon as the holder writes the release, before its own requeue', async () => {
    s.apply('holder', { packageName: NODE_PACKAGE, targets: { instanceIds: ids } });
    s.apply('waiter', {
      packageName: OTHER_PACKAGE,
      parameters: { version: '3' },
      targets: { instanceIds: ids },
    });
    await s.until('holder', (o) => (o?.status?.executions?.length ?? 0) > 0);

    const waited = await s.reconcile('waiter');
    expect(ready(s.get('waiter'))?.reason).toBe('WaitingForInstanceLock');
    const requeueMs = waited.result?.requeueAfterMs ?? 0;
    expect(requeueMs).toBeGreaterThan(0);
    // What the controller does with the result: the key comes back after its requeue delay.
    queue.addAfter('default/waiter', requeueMs);
    expect(queue.len()).toBe(0);
    expect(lock.waiting()).toBe(1);

    // The holder's execution finishes in the emulator; its reconciles see it and write the release.
    for (let i = 0; i < 500 && !isReady(s.get('holder')); i++) {
      await s.reconcile('holder');
      if (!isReady(s.get('holder'))) await sleep(10);
    }
    expect(isReady(s.get('holder'))).toBe(true);
    expect(s.get('holder')?.status?.executions ?? []).toEqual([]);

    // No fake time has passed: the waiter's own requeue is still ahead, yet its key is ready now.
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe('default/waiter');
    queue.done('default/waiter');
    expect(lock.waiting()).toBe(0);

    // Its reconcile starts the install on every instance.
    await s.reconcile('waiter');
    const execs = s.get('waiter')?.status?.executions ?? [];
    expect(execs.length).toBeGreaterThan(0);
    expect(ready(s.get('waiter'))?.reason).not.toBe('WaitingForInstanceLock');
    await s.until('waiter', (o) => isReady(o));
  });

  it('keeps a fallback requeue no shorter than the poll maximum while it only waits', async () => {
    s.apply('holder2', {
      packageName: NODE_PACKAGE,
      parameters: { version: '16' },
      targets: { instanceIds: fleetIds('wk', 11, 20) },
    });
    await s.until('holder2', (o) => (o?.status?.executions?.length ?? 0) > 0);
    s.apply('waiter2', {
      packageName: OTHER_PACKAGE,
      parameters: { version: '3' },
      targets: { instanceIds: fleetIds('wk', 11, 15) },
    });
    const waited = await s.reconcile('waiter2');
    expect(ready(s.get('waiter2'))?.reason).toBe('WaitingForInstanceLock');
    // The harness's pollMaxMs (5 s), not the 1 s poll minimum.
    expect(waited.result?.requeueAfterMs).toBe(5_000);
    await s.until('holder2', (o) => isReady(o));
  });
});
