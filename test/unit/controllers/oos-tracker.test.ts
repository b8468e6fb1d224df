/**
 * The OOS tracker's use of the fleet's shared execution states: how old a listing a poll accepts.
 */
import { describe, expect, it } from 'vitest';
import type { EcsExtension } from '../../../src/api/ecsextension.js';
import type { RegionFleet } from '../../../src/cloud/fleet.js';
import type { Execution, OosApi } from '../../../src/cloud/types.js';
import { DomainMetrics } from '../../../src/controllers/shared/metrics.js';
import { OosExecutionTracker, POLL_LISTING_MAX_AGE_MS } from '../../../src/controllers/shared/oos-tracker.js';
import type { WorkItem } from '../../../src/controllers/shared/work.js';
import { createRegistry } from '../../../src/metrics/index.js';

const owner = {
  apiVersion: 'ecsops.io/v1alpha1',
  kind: 'EcsExtension',
  metadata: { name: 'a', namespace: 'ns', uid: 'u-1', generation: 1 },
  spec: { regionId: 'cn-hangzhou', targets: { instanceIds: ['i-1'] }, packageName: 'p' },
} as EcsExtension;

const NOW = Date.parse('2026-11-30T12:00:00Z');

/** A tracker over a fleet that records the `maxAgeMs` of every execution-state read. */
function tracker(pollDelay?: { minMs: number; maxMs: number }) {
  const maxAges: number[] = [];
  const fleet = {
    nowMs: () => NOW,
    async executionStates(_k: string, _v: string, o: { maxAgeMs: number }) {
      maxAges.push(o.maxAgeMs);
      const running = { executionId: 'e-1', status: 'Running', tags: {} } as unknown as Execution;
      return { byId: new Map([['e-1', running]]), readAtMs: NOW };
    },
  } as unknown as RegionFleet;
  const t = new OosExecutionTracker({
    oos: {} as OosApi,
    fleet,
    ...(pollDelay ? { pollDelay } : {}),
    template: 't',
    parameters: () => ({}),
    events: { event: async () => undefined },
    metrics: new DomainMetrics(createRegistry({ defaultMetrics: false })),
  });
  return { t, maxAges };
}

const item = (ageMs: number): WorkItem => ({
  executionId: 'e-1',
  action: 'install',
  instanceIds: ['i-1'],
  clientToken: 'c',
  startTime: new Date(NOW - ageMs).toISOString(),
});

describe('OosExecutionTracker polls through the fleet', () => {
  it('accepts a listing no older than the poll delay of its items, capped at the default', async () => {
    const { t, maxAges } = tracker({ minMs: 1_000, maxMs: 5_000 });
    await t.poll(owner, [item(2_000)]); // poll delay 1 s (the minimum)
    await t.poll(owner, [item(6_000)]); // a quarter of the age: 1.5 s
    await t.poll(owner, [item(12_000)]); // 3 s: above the cap
    await t.poll(owner, [item(600_000)]); // the 5 s maximum
    expect(maxAges).toEqual([1_000, 1_500, POLL_LISTING_MAX_AGE_MS, POLL_LISTING_MAX_AGE_MS]);
  });

  it('without poll delay bounds always accepts the default age', async () => {
    const { t, maxAges } = tracker();
    await t.poll(owner, [item(2_000)]);
    expect(maxAges).toEqual([POLL_LISTING_MAX_AGE_MS]);
  });
});
