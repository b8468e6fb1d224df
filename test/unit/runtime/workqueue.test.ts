import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.js';
import { controllerRuntimeMetrics } from '../../../src/runtime/metrics.js';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  QueuePriority,
  Workqueue,
  defaultRateLimiter,
} from '../../../src/runtime/workqueue.js';

function newQueue(clock = new FakeClock(), opts: Partial<ConstructorParameters<typeof Workqueue>[0]> = {}) {
  return { clock, q: new Workqueue({ name: 'test', clock, ...opts }) };
}

/** Resolves with the value if the promise settles within a few macrotasks, else 'pending'. */
async function peek<T>(p: Promise<T>): Promise<T | 'pending'> {
  let value: T | 'pending' = 'pending';
  void p.then((v) => (value = v));
  await flushMicrotasks();
  await flushMicrotasks();
  return value;
}

describe('Workqueue basics', () => {
  it('de-duplicates keys that are queued and not yet handed out', async () => {
    const { q } = newQueue();
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    expect(q.len()).toBe(0);
  });

  it('hands keys out in FIFO order and get() waits for an add', async () => {
    const { q } = newQueue();
    const pending = q.get();
    expect(await peek(pending)).toBe('pending');
    q.add('ns/x');
    expect(await pending).toBe('ns/x');
  });

  it('never hands out a key that is being processed; re-adds it once on done()', async () => {
    const { q } = newQueue();
    q.add('ns/a');
    const key = await q.get();
    expect(key).toBe('ns/a');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.len()).toBe(0);
    const second = q.get();
    expect(await peek(second)).toBe('pending');
    q.done('ns/a');
    expect(await second).toBe('ns/a');
    q.done('ns/a');
    expect(q.len()).toBe(0);
    expect(await peek(q.get())).toBe('pending');
  });

  it('done() of a key not re-added does not queue it again', async () => {
    const { q } = newQueue();
    q.add('ns/a');
    await q.get();
    q.done('ns/a');
    expect(q.len()).toBe(0);
  });

  it('serves concurrent getters one key each', async () => {
    const { q } = newQueue();
    const g1 = q.get();
    const g2 = q.get();
    q.add('ns/a');
    q.add('ns/b');
    expect([await g1, await g2]).toEqual(['ns/a', 'ns/b']);
  });
});

describe('Workqueue delays', () => {
  it('addAfter queues the key only when its time has come', async () => {
    const { q, clock } = newQueue();
    q.addAfter('ns/a', 1000);
    expect(q.len()).toBe(0);
    expect(q.waitingLen()).toBe(1);
    await clock.advance(999);
    expect(q.len()).toBe(0);
    await clock.advance(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('ns/a');
  });

  it('addAfter keeps the earliest ready time per key', async () => {
    const { q, clock } = newQueue();
    q.addAfter('ns/a', 5000);
    q.addAfter('ns/a', 1000);
    q.addAfter('ns/a', 3000);
    await clock.advance(1000);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('ns/a');
    q.done('ns/a');
    await clock.advance(10_000);
    expect(q.len()).toBe(0);
  });

  it('delayed keys become ready in ready-time order', async () => {
    const { q, clock } = newQueue();
    q.addAfter('ns/c', 300);
    q.addAfter('ns/a', 100);
    q.addAfter('ns/b', 200);
    await clock.advance(300);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['ns/a', 'ns/b', 'ns/c']);
  });

  it('addAfter with a non-positive delay adds at once', () => {
    const { q } = newQueue();
    q.addAfter('ns/a', 0);
    q.addAfter('ns/b', -5);
    expect(q.len()).toBe(2);
  });

  it('a delayed key that is already queued is not queued twice', async () => {
    const { q, clock } = newQueue();
    q.add('ns/a');
    q.addAfter('ns/a', 10);
    await clock.advance(10);
    expect(q.len()).toBe(1);
  });
});

describe('Workqueue priorities', () => {
  it('hands out the highest priority first, FIFO within one priority', async () => {
    const { q } = newQueue();
    q.add('ns/list-1', QueuePriority.low);
    q.add('ns/list-2', QueuePriority.low);
    q.add('ns/retry');
    q.add('ns/changed', QueuePriority.change);
    q.add('ns/poll-1', QueuePriority.poll);
    q.add('ns/poll-2', QueuePriority.poll);
    expect(q.len()).toBe(6);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push((await q.get()) as string);
    expect(order).toEqual(['ns/poll-1', 'ns/poll-2', 'ns/changed', 'ns/retry', 'ns/list-1', 'ns/list-2']);
    expect(q.len()).toBe(0);
  });

  it('re-adding a queued key with a higher priority moves it up, never down, and keeps it queued once', async () => {
    const { q } = newQueue();
    q.add('ns/a', QueuePriority.low);
    q.add('ns/b', QueuePriority.low);
    q.add('ns/b', QueuePriority.change);
    q.add('ns/b', QueuePriority.low);
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('ns/b');
    expect(await q.get()).toBe('ns/a');
    expect(q.len()).toBe(0);
    expect(await peek(q.get())).toBe('pending');
  });

  it('a key re-added while processing is re-queued on done() at its highest priority', async () => {
    const { q } = newQueue();
    q.add('ns/a', QueuePriority.low);
    expect(await q.get()).toBe('ns/a');
    q.add('ns/b', QueuePriority.change);
    q.add('ns/a', QueuePriority.low);
    q.add('ns/a', QueuePriority.poll);
    q.done('ns/a');
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('a delayed key keeps its priority when its time comes (the higher of two addAfter calls)', async () => {
    const { clock, q } = newQueue();
    q.add('ns/drift', QueuePriority.low);
    q.addAfter('ns/poll', 1000, QueuePriority.low);
    q.addAfter('ns/poll', 2000, QueuePriority.poll);
    await clock.advance(1000);
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('ns/poll');
    expect(await q.get()).toBe('ns/drift');
  });
});

describe('Workqueue minimum priority of a get()', () => {
  it('hands a waiter only keys of at least its priority; an earlier general waiter is not skipped', async () => {
    const { q } = newQueue();
    const pollOnly = q.get(QueuePriority.poll);
    q.add('ns/drift', QueuePriority.low);
    expect(await peek(pollOnly)).toBe('pending'); // a drift check is not for the poll worker
    expect(q.len()).toBe(1);
    const general = q.get();
    expect(await general).toBe('ns/drift');
    q.add('ns/poll', QueuePriority.poll);
    expect(await pollOnly).toBe('ns/poll');
    // Both kinds waiting: a poll key goes to whichever waits longest; a drift key to the general one.
    const pollOnly2 = q.get(QueuePriority.poll);
    const general2 = q.get();
    q.add('ns/drift-2', QueuePriority.low);
    expect(await general2).toBe('ns/drift-2');
    q.add('ns/poll-2', QueuePriority.poll);
    expect(await pollOnly2).toBe('ns/poll-2');
  });
});

describe('Workqueue rate limiting', () => {
  it('backs off exponentially per key and forget() resets it', async () => {
    const clock = new FakeClock();
    const { q } = newQueue(clock, { rateLimiter: { baseDelayMs: 100, maxDelayMs: 1000, qps: Infinity } });
    const expected = [100, 200, 400, 800, 1000, 1000];
    for (const delay of expected) {
      q.addRateLimited('ns/a');
      await clock.advance(delay - 1);
      expect(q.len(), `before ${delay} ms`).toBe(0);
      await clock.advance(1);
      expect(q.len(), `at ${delay} ms`).toBe(1);
      await q.get();
      q.done('ns/a');
    }
    expect(q.numRequeues('ns/a')).toBe(6);
    q.forget('ns/a');
    expect(q.numRequeues('ns/a')).toBe(0);
    q.addRateLimited('ns/a');
    await clock.advance(100);
    expect(q.len()).toBe(1);
  });

  it('keeps backoff independent per key', () => {
    const rl = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    expect([rl.when('a'), rl.when('a'), rl.when('a')]).toEqual([5, 10, 20]);
    expect(rl.when('b')).toBe(5);
    expect(rl.numRequeues('a')).toBe(3);
  });

  it('caps at the maximum even after many failures (no overflow)', () => {
    const rl = new ItemExponentialFailureRateLimiter(750, 900_000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = rl.when('k');
    expect(last).toBe(900_000);
  });

  it('the token bucket grants a burst, then spaces reservations at 1/qps', async () => {
    const clock = new FakeClock();
    const bucket = new BucketRateLimiter(10, 3, clock);
    expect([bucket.when(), bucket.when(), bucket.when()]).toEqual([0, 0, 0]);
    expect(bucket.when()).toBeCloseTo(100);
    expect(bucket.when()).toBeCloseTo(200);
    await clock.advance(1000);
    // 1 s refills 10 tokens, capped at the burst of 3 (after paying back the 2 borrowed).
    expect(bucket.when()).toBe(0);
  });

  it('the default limiter takes the larger of backoff and bucket delay', () => {
    const clock = new FakeClock();
    const rl = defaultRateLimiter({ baseDelayMs: 5, maxDelayMs: 1000, qps: 1, burst: 1 }, clock);
    expect(rl.when('a')).toBe(5);
    expect(rl.when('b')).toBeCloseTo(1000);
  });
});

describe('Workqueue shutdown', () => {
  it('resolves pending and later get() calls with undefined and ignores adds', async () => {
    const { q } = newQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
    q.add('ns/a');
    q.addAfter('ns/b', 10);
    expect(await q.get()).toBeUndefined();
    expect(q.len()).toBe(0);
  });

  it('drops delayed keys and cancels their timer', async () => {
    const { q, clock } = newQueue();
    q.addAfter('ns/a', 100);
    q.shutDown();
    expect(clock.pendingTimers()).toBe(0);
    await clock.advance(200);
    expect(q.len()).toBe(0);
  });

  it('shutDownWithDrain waits for keys in flight and does not re-queue them', async () => {
    const { q } = newQueue();
    q.add('ns/a');
    q.add('ns/b');
    const a = await q.get();
    expect(a).toBe('ns/a');
    q.add('ns/a');
    const drained = q.shutDownWithDrain();
    expect(await peek(drained)).toBe('pending');
    expect(await q.get()).toBeUndefined();
    q.done('ns/a');
    expect(await peek(drained)).toBeUndefined();
    expect(q.len()).toBe(0);
  });

  it('shutDownWithDrain resolves at once when nothing is in flight', async () => {
    const { q } = newQueue();
    q.add('ns/a');
    await q.shutDownWithDrain();
    expect(q.len()).toBe(0);
  });
});

describe('Workqueue metrics', () => {
  async function value(registry: Registry, name: string, labels: Record<string, string>) {
    const base = name.replace(/_(sum|count|bucket)$/, '');
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name || m.name === base);
    const sample = metric?.values.find(
      (v) =>
        ((v as { metricName?: string }).metricName ?? metric.name) === name &&
        Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    );
    return sample?.value;
  }

  it('reports depth, adds, retries and in-flight work with name/controller labels', async () => {
    const registry = new Registry();
    const clock = new FakeClock();
    const q = new Workqueue({
      name: 'widget',
      clock,
      metrics: controllerRuntimeMetrics(registry).workqueue,
      rateLimiter: { qps: Infinity },
    });
    const labels = { name: 'widget', controller: 'widget' };
    expect(await value(registry, 'workqueue_depth', { ...labels, priority: '' })).toBe(0);
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(await value(registry, 'workqueue_adds_total', labels)).toBe(2);
    expect(await value(registry, 'workqueue_depth', { ...labels, priority: '' })).toBe(2);
    await clock.advance(2000);
    await q.get();
    expect(await value(registry, 'workqueue_depth', { ...labels, priority: '' })).toBe(1);
    await clock.advance(3000);
    expect(await value(registry, 'workqueue_unfinished_work_seconds', labels)).toBe(3);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', labels)).toBe(3);
    q.done('ns/a');
    expect(await value(registry, 'workqueue_work_duration_seconds_sum', labels)).toBe(3);
    expect(await value(registry, 'workqueue_queue_duration_seconds_sum', labels)).toBe(2);
    q.addRateLimited('ns/a');
    expect(await value(registry, 'workqueue_retries_total', labels)).toBe(1);
    q.shutDown();
    expect(await value(registry, 'workqueue_depth', { ...labels, priority: '' })).toBe(0);
  });
});
