/**
 * Waiters of the cross-kind instance lock wake when a hold ends (src/controllers/shared/lock.ts,
 * issue 23): through the waiter's kind's wake function, once, on a published release (informer
 * update without the keys) or a process-local one — not while the holder still holds the key in
 * the other view.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/controllers/shared/deps.js';
import { encodeLockKeys, InstanceLock } from '../../src/controllers/shared/lock.js';

function res(kind: string, name: string, uid: string, lockedIds: string[] = []): Resource {
  return {
    apiVersion: 'ecsops.io/v1alpha1',
    kind,
    metadata: { name, namespace: 'ns', uid },
    spec: {},
    status: {
      executions:
        lockedIds.length > 0
          ? [
              {
                executionId: 'exec-1',
                action: 'install',
                clientToken: 'x',
                startTime: '2026-06-01T00:00:00Z',
                lockKeys: encodeLockKeys(lockedIds),
              },
            ]
          : [],
    },
  };
}

/** A source whose objects the test sets, with informer-like events. */
class Source {
  objs: Resource[] = [];
  private readonly handlers = {
    add: [] as Array<(o: Resource) => void>,
    update: [] as Array<(o: Resource) => void>,
    delete: [] as Array<(o: Resource) => void>,
  };
  get = (): undefined => undefined;
  list = (): Resource[] => this.objs;
  onAdd = (fn: (o: Resource) => void): void => void this.handlers.add.push(fn);
  onUpdate = (fn: (o: Resource) => void): void => void this.handlers.update.push(fn);
  onDelete = (fn: (o: Resource) => void): void => void this.handlers.delete.push(fn);
  set(obj: Resource): void {
    const i = this.objs.findIndex((o) => o.metadata.uid === obj.metadata.uid);
    if (i >= 0) this.objs[i] = obj;
    else this.objs.push(obj);
    for (const fn of i >= 0 ? this.handlers.update : this.handlers.add) fn(obj);
  }
  remove(obj: Resource): void {
    this.objs = this.objs.filter((o) => o.metadata.uid !== obj.metadata.uid);
    for (const fn of this.handlers.delete) fn(obj);
  }
}

function setup() {
  const lock = new InstanceLock();
  const ext = new Source();
  const app = new Source();
  const woken: string[] = [];
  lock.addSource('EcsExtension', ext, (key) => woken.push(`EcsExtension ${key}`));
  lock.addSource('AppRelease', app, (key) => woken.push(`AppRelease ${key}`));
  return { lock, ext, app, woken };
}

describe('InstanceLock waiters', () => {
  it('a published release wakes a waiter of another kind, once', () => {
    const { lock, ext, app, woken } = setup();
    const holder = res('EcsExtension', 'node', 'u-ext', ['i-1', 'i-2']);
    ext.set(holder);
    const waiter = res('AppRelease', 'shop', 'u-app');
    app.set(waiter);
    expect(lock.check(waiter, ['i-2', 'i-3']).held).toHaveLength(1);
    expect(lock.waiting()).toBe(1);

    ext.set(res('EcsExtension', 'node', 'u-ext', ['i-1', 'i-2'])); // a status write that keeps the hold
    expect(woken).toEqual([]);
    ext.set(res('EcsExtension', 'node', 'u-ext', ['i-1'])); // i-2 released
    expect(woken).toEqual(['AppRelease ns/shop']);
    ext.set(res('EcsExtension', 'node', 'u-ext')); // i-1 too: the waiter was already woken
    expect(woken).toEqual(['AppRelease ns/shop']);
    expect(lock.waiting()).toBe(0);
  });

  it('a release of keys the waiter does not wait for wakes nobody', () => {
    const { lock, ext, woken } = setup();
    ext.set(res('EcsExtension', 'a', 'u-a', ['i-1']));
    ext.set(res('EcsExtension', 'b', 'u-b', ['i-2']));
    lock.check(res('EcsExtension', 'c', 'u-c'), ['i-1']);
    ext.set(res('EcsExtension', 'b', 'u-b'));
    expect(woken).toEqual([]);
    ext.set(res('EcsExtension', 'a', 'u-a'));
    expect(woken).toEqual(['EcsExtension ns/c']);
  });

  it('a local release wakes only once the holder’s published status no longer holds the key', () => {
    const { lock, ext, woken } = setup();
    const holder = res('EcsExtension', 'node', 'u-ext', ['i-1']);
    ext.set(holder);
    lock.hold(holder, ['i-1']);
    lock.check(res('AppRelease', 'shop', 'u-app'), ['i-1']);
    lock.hold(holder, []); // its poll saw the work finish; the status write is still to come
    expect(woken).toEqual([]);
    ext.set(res('EcsExtension', 'node', 'u-ext'));
    expect(woken).toEqual(['AppRelease ns/shop']);
  });

  it('a published release waits for the holder’s local hold; a hold never published wakes on its local release', () => {
    const { lock, ext, woken } = setup();
    const holder = res('EcsExtension', 'node', 'u-ext', ['i-1']);
    ext.set(holder);
    lock.hold(holder, ['i-1']);
    lock.check(res('AppRelease', 'shop', 'u-app'), ['i-1']);
    ext.set(res('EcsExtension', 'node', 'u-ext'));
    expect(woken).toEqual([]);
    lock.hold(holder, []);
    expect(woken).toEqual(['AppRelease ns/shop']);

    // Started and finished before any status write: the local hold alone.
    const quick = res('EcsExtension', 'quick', 'u-q');
    lock.hold(quick, ['i-5', 'i-6']);
    lock.check(res('EcsExtension', 'late', 'u-late'), ['i-6']);
    lock.hold(quick, ['i-5']);
    expect(woken).toEqual(['AppRelease ns/shop', 'EcsExtension ns/late']);
  });

  it('a deleted holder releases; a deleted waiter is forgotten', () => {
    const { lock, ext, app, woken } = setup();
    const holder = res('EcsExtension', 'node', 'u-ext', ['i-1']);
    ext.set(holder);
    const gone = res('AppRelease', 'gone', 'u-gone');
    app.set(gone);
    lock.check(gone, ['i-1']);
    app.remove(gone);
    lock.check(res('AppRelease', 'shop', 'u-app'), ['i-1']);
    ext.remove(holder);
    expect(woken).toEqual(['AppRelease ns/shop']);
  });
});
