import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.js';
import { Controller, jitter } from '../../../src/runtime/controller.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../../../src/runtime/controller.js';
import { StalledError, TransientError } from '../../../src/runtime/errors.js';
import { createLogger } from '../../../src/runtime/logger.js';
import { controllerRuntimeMetrics } from '../../../src/runtime/metrics.js';
import { QueuePriority, Workqueue } from '../../../src/runtime/workqueue.js';

type Behaviour = (req: ReconcileRequest, ctx: ReconcileContext) => Promise<ReconcileResult>;

function setup(behaviour: Behaviour, workers = 1) {
  const registry = new Registry();
  const metrics = controllerRuntimeMetrics(registry);
  const clock = new FakeClock();
  const queue = new Workqueue({
    name: 'widget',
    clock,
    metrics: metrics.workqueue,
    rateLimiter: { baseDelayMs: 1000, maxDelayMs: 60_000, qps: Infinity },
  });
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  const calls: string[] = [];
  const controller = new Controller({
    name: 'widget',
    queue,
    workers,
    logger,
    metrics,
    random: () => 0.5,
    reconciler: {
      reconcile: async (req, ctx) => {
        calls.push(`${req.namespace}/${req.name}`);
        return behaviour(req, ctx);
      },
    },
  });
  async function sample(name: string, labels: Record<string, string> = { controller: 'widget' }) {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.find((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    )?.value;
  }
  return { registry, clock, queue, controller, calls, lines, sample };
}

async function settle() {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

describe('Controller poll workers', () => {
  it('reconciles a poll-priority key while every regular worker is busy with a long reconcile', async () => {
    let release: (() => void) | undefined;
    const { queue, controller, calls } = setup(async (req) => {
      if (req.name === 'first') await new Promise<void>((r) => (release = r));
      return {};
    });
    controller.start();
    queue.add('ns/first', QueuePriority.low);
    await settle();
    queue.add('ns/drift', QueuePriority.low);
    queue.add('ns/finished', QueuePriority.poll);
    await settle();
    // The one regular worker waits in `first`; the poll worker took `finished`, not `drift`.
    expect(calls).toEqual(['ns/first', 'ns/finished']);
    release?.();
    await settle();
    expect(calls).toEqual(['ns/first', 'ns/finished', 'ns/drift']);
    await controller.stop();
  });
});

describe('Controller result accounting', () => {
  it('pre-initialises every result label to zero', async () => {
    const { sample } = setup(async () => ({}));
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
      expect(await sample('controller_runtime_reconcile_total', { controller: 'widget', result })).toBe(0);
    }
    // 1 worker + 1 poll-only worker (ceil(1 / 4)).
    expect(await sample('controller_runtime_max_concurrent_reconciles')).toBe(2);
    expect(await sample('controller_runtime_terminal_reconcile_errors_total')).toBe(0);
  });

  it('success: counts success, forgets backoff, no requeue', async () => {
    const { queue, controller, clock, calls, sample } = setup(async () => ({}));
    controller.start();
    queue.add('ns/a');
    await settle();
    await clock.advance(3_600_000);
    expect(calls).toEqual(['ns/a']);
    expect(
      await sample('controller_runtime_reconcile_total', { controller: 'widget', result: 'success' }),
    ).toBe(1);
    expect(queue.numRequeues('ns/a')).toBe(0);
  });

  it('requeueAfterMs: counts requeue_after and reconciles again after the jittered delay', async () => {
    let n = 0;
    const { queue, controller, clock, calls, sample } = setup(async () =>
      n++ === 0 ? { requeueAfterMs: 10_000 } : {},
    );
    controller.start();
    queue.add('ns/a');
    await settle();
    expect(
      await sample('controller_runtime_reconcile_total', { controller: 'widget', result: 'requeue_after' }),
    ).toBe(1);
    await clock.advance(9_999); // random() = 0.5 → jitter factor exactly 1.0
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    await settle();
    expect(calls).toHaveLength(2);
  });

  it('a thrown error counts error, requeues with growing backoff, and success forgets it', async () => {
    let n = 0;
    const { queue, controller, clock, calls, sample, lines } = setup(async () => {
      if (n++ < 2) throw new TransientError('Throttled', 'GET https://x.example/?Signature=abc failed');
      return {};
    });
    controller.start();
    queue.add('ns/a');
    await settle();
    expect(calls).toHaveLength(1);
    expect(queue.numRequeues('ns/a')).toBe(1);
    await clock.advance(1000);
    await settle();
    expect(calls).toHaveLength(2);
    await clock.advance(1999);
    await settle();
    expect(calls).toHaveLength(2);
    await clock.advance(1);
    await settle();
    expect(calls).toHaveLength(3);
    expect(queue.numRequeues('ns/a')).toBe(0);
    expect(await sample('controller_runtime_reconcile_errors_total')).toBe(2);
    expect(
      await sample('controller_runtime_reconcile_total', { controller: 'widget', result: 'error' }),
    ).toBe(2);
    expect(await sample('workqueue_retries_total', { name: 'widget', controller: 'widget' })).toBe(2);
    const errLine = lines.find((l) => l.msg === 'reconcile failed; requeued with backoff');
    expect(errLine).toMatchObject({ controller: 'widget', namespace: 'ns', name: 'a', reason: 'Throttled' });
    expect(String(errLine?.reconcileID)).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(lines)).not.toContain('Signature=abc');
  });

  it('a StalledError is terminal: counted, forgotten, never requeued', async () => {
    const { queue, controller, clock, calls, sample } = setup(async () => {
      throw new StalledError('TemplateNotFound', 'no such template');
    });
    controller.start();
    queue.add('ns/a');
    await settle();
    await clock.advance(3_600_000);
    expect(calls).toEqual(['ns/a']);
    expect(await sample('controller_runtime_terminal_reconcile_errors_total')).toBe(1);
    expect(await sample('controller_runtime_reconcile_errors_total')).toBe(1);
    expect(
      await sample('controller_runtime_reconcile_total', { controller: 'widget', result: 'error' }),
    ).toBe(1);
    expect(queue.waitingLen()).toBe(0);
  });

  it('a TypeError counts as a panic and is retried', async () => {
    const { queue, controller, sample } = setup(async () => {
      throw new TypeError('cannot read properties of undefined');
    });
    controller.start();
    queue.add('ns/a');
    await settle();
    expect(await sample('controller_runtime_reconcile_panics_total')).toBe(1);
    expect(queue.waitingLen()).toBe(1);
  });

  it('never reconciles one key concurrently, even with many workers', async () => {
    let active = 0;
    let maxActive = 0;
    const releases: Array<() => void> = [];
    const { queue, controller, calls } = setup(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise<void>((r) => releases.push(r));
      active--;
      return {};
    }, 4);
    controller.start();
    queue.add('ns/a');
    await settle();
    queue.add('ns/a');
    queue.add('ns/a');
    await settle();
    expect(calls).toHaveLength(1);
    releases.shift()?.();
    await settle();
    expect(calls).toHaveLength(2);
    releases.shift()?.();
    await settle();
    expect(calls).toHaveLength(2);
    expect(maxActive).toBe(1);
  });

  it('stop() waits for the in-flight reconcile; abortInFlight() aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const { queue, controller, sample } = setup(
      (_req, ctx) =>
        new Promise((resolve) => {
          seen = ctx.signal;
          ctx.signal.addEventListener('abort', () => resolve({}));
        }),
    );
    controller.start();
    queue.add('ns/a');
    await settle();
    expect(await sample('controller_runtime_active_workers')).toBe(1);
    let stopped = false;
    const stopping = controller.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    controller.abortInFlight();
    await stopping;
    expect(seen?.aborted).toBe(true);
    expect(await sample('controller_runtime_active_workers')).toBe(0);
  });
});

describe('jitter', () => {
  it('stays within ±5 %', () => {
    expect(jitter(1000, () => 0)).toBe(950);
    expect(jitter(1000, () => 0.999999)).toBeCloseTo(1050, 2);
  });
});
