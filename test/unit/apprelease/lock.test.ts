/** The kit's cross-kind per-instance lock (src/controllers/shared/lock.ts), from status and local holds. */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../src/controllers/shared/deps.js';
import {
  decodeLockKeys,
  encodeLockKeys,
  instanceLockKey,
  InstanceLock,
  LOCK_KEY_LENGTH,
} from '../../../src/controllers/shared/lock.js';
import { toTracked } from '../../../src/controllers/shared/work.js';

function res(kind: string, name: string, uid: string, executions: unknown[] = []): Resource {
  return {
    apiVersion: 'ecsops.io/v1alpha1',
    kind,
    metadata: { name, namespace: 'ns', uid },
    spec: {},
    status: { executions },
  };
}
const reader = (objs: Resource[]) => ({ get: () => undefined, list: () => objs });

describe('InstanceLock', () => {
  it('keys are fixed-width, sorted, de-duplicated and decode back', () => {
    const k = encodeLockKeys(['i-b', 'i-a', 'i-a']);
    expect(k).toHaveLength(2 * LOCK_KEY_LENGTH);
    expect(decodeLockKeys(k).sort()).toEqual([instanceLockKey('i-a'), instanceLockKey('i-b')].sort());
    expect(encodeLockKeys(Array.from({ length: 100 }, (_, i) => `i-${i}`))).toHaveLength(800);
  });

  it('an instance in another resource’s in-flight status work is held; the owner’s own work is not', () => {
    const work = {
      executionId: 't-1',
      action: 'install',
      instanceIds: ['i-1', 'i-2'],
      clientToken: 'x',
      startTime: 's',
    };
    const ext = res('EcsExtension', 'node', 'u-ext', [toTracked(work)]);
    const app = res('AppRelease', 'shop', 'u-app');
    const lock = new InstanceLock();
    lock.addSource('EcsExtension', reader([ext]));
    lock.addSource('AppRelease', reader([app]));
    const c = lock.check(app, ['i-1', 'i-3']);
    expect(c.free).toEqual(['i-3']);
    expect(c.held).toEqual([
      { instanceId: 'i-1', holder: { kind: 'EcsExtension', namespace: 'ns', name: 'node', uid: 'u-ext' } },
    ]);
    expect(lock.check(ext, ['i-1']).free).toEqual(['i-1']);
  });

  it('local holds cover the gap before the status write, and are released', () => {
    const a = res('AppRelease', 'a', 'u-a');
    const b = res('PatchPolicy', 'b', 'u-b');
    const lock = new InstanceLock();
    lock.hold(a, ['i-9']);
    expect(lock.check(b, ['i-9']).held[0]?.holder.name).toBe('a');
    lock.hold(a, []);
    expect(lock.check(b, ['i-9']).free).toEqual(['i-9']);
    lock.hold(a, ['i-9']);
    lock.release('u-a');
    expect(lock.check(b, ['i-9']).free).toEqual(['i-9']);
  });
});
