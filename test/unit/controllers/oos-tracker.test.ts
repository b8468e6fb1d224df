/**
 * The OOS tracker's use of the fleet's shared execution states: how old a listing a poll accepts.
 */
import { describe, expect, it } from 'vitest';
import type { EcsExtension } from '../../../src/api/ecsextension.js';
import { RegionFleet } from '../../../src/cloud/fleet.js';
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
    confirmTracked: () => undefined,
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

describe('OosExecutionTracker adoption after a finished execution was folded', () => {
  /**
   * Found by the daemon benchmark (100x100-qps20): the reconcile after the one that folded a
   * finished execution adopted it again from the shared adoption listing, read while it still
   * ran; folded as work of unknown origin, it dropped the package states of all 100 instances, and
   * their re-read at background priority held a poll worker for minutes.
   */
  it('does not adopt an execution its status tracked and a poll saw finished', async () => {
    let now = NOW;
    const execs = new Map<string, Execution>();
    const exec = (status: string): Execution =>
      ({
        executionId: 'e-1',
        status,
        tags: { 'ecsops.io/owner-uid': 'u-1', 'ecsops.io/owner-kind': 'EcsExtension' },
        parameters: { action: 'install', targets: { ResourceIds: ['i-1'] } },
        startDate: new Date(NOW).toISOString(),
        ...(status === 'Success' ? { endDate: new Date(now).toISOString() } : {}),
      }) as unknown as Execution;
    const oos = {
      async listAllExecutions(f: { status?: string; endDateAfter?: string }) {
        return [...execs.values()].filter((e) =>
          f.status ? e.status === f.status : f.endDateAfter ? e.status === 'Success' : true,
        );
      },
      async getExecution(id: string) {
        return execs.get(id);
      },
      async listTaskExecutions() {
        return [];
      },
    } as unknown as OosApi;
    const fleet = new RegionFleet({ oos: () => oos, now: () => now });
    const t = new OosExecutionTracker({
      oos,
      fleet,
      template: 't',
      parameters: () => ({}),
      events: { event: async () => undefined },
      metrics: new DomainMetrics(createRegistry({ defaultMetrics: false })),
    });
    // The first reconcile checked for untracked work: none.
    expect(await t.adopt(owner, new Set(), new Date(now))).toEqual([]);
    now += 3_000; // that (empty) listing is too old to be shared now
    // This process started e-1 (the ClientToken, then the ID), and its status tracks it.
    fleet.noteStarted('u-1', 'tok-1');
    execs.set('e-1', exec('Running'));
    fleet.noteStarted('u-1', 'e-1', 'tok-1');
    now += 100;
    // Another resource's adoption check reads the shared listing while e-1 runs.
    await fleet.runningExecutions('ecsops.io/owner-kind', 'EcsExtension', { maxAgeMs: 2_500 });
    now += 400;
    execs.set('e-1', exec('Success'));
    const polled = await t.poll(owner, [{ ...item(500), clientToken: 'tok-1' }]);
    expect(polled.finished.map((f) => f.work.executionId)).toEqual(['e-1']);
    // Folded: the status no longer tracks e-1. The next reconcile checks for untracked work.
    now += 1;
    expect(await t.adopt(owner, new Set(), new Date(now))).toEqual([]);
  });
});
