/**
 * The OOS tracker's poll of just-started work through the fleet's shared execution states: an item
 * the listing predates waits for a later refresh only when it knows its instances.
 */
import { describe, expect, it } from 'vitest';
import type { EcsExtension } from '../../../src/api/ecsextension.js';
import type { RegionFleet } from '../../../src/cloud/fleet.js';
import type { Execution, OosApi } from '../../../src/cloud/types.js';
import { DomainMetrics } from '../../../src/controllers/shared/metrics.js';
import { OosExecutionTracker } from '../../../src/controllers/shared/oos-tracker.js';
import { fromTracked, toTracked, type WorkItem } from '../../../src/controllers/shared/work.js';
import { createRegistry } from '../../../src/metrics/index.js';

const owner = {
  apiVersion: 'ecsops.io/v1alpha1',
  kind: 'EcsExtension',
  metadata: { name: 'a', namespace: 'ns', uid: 'u-1', generation: 1 },
  spec: { regionId: 'cn-hangzhou', targets: { instanceIds: ['i-1'] }, packageName: 'p' },
} as EcsExtension;

const NOW = Date.parse('2026-11-30T12:00:00Z');

describe('OosExecutionTracker: work started after the shared listing was read', () => {
  it('an item read back from status without its instances is read by ID, so they stay busy', async () => {
    const byId: string[] = [];
    const fleet = {
      nowMs: () => NOW + 300,
      confirmTracked: () => undefined,
      // The shared view was read 200 ms before the start: it lacks the execution.
      executionStates: async () => ({ byId: new Map<string, Execution>(), readAtMs: NOW - 200 }),
    } as unknown as RegionFleet;
    const oos = {
      async getExecution(id: string) {
        byId.push(id);
        return {
          executionId: id,
          status: 'Running',
          tags: {},
          parameters: { targets: { ResourceIds: ['i-1', 'i-2'] } },
        } as unknown as Execution;
      },
    } as unknown as OosApi;
    const t = new OosExecutionTracker({
      oos,
      fleet,
      template: 't',
      parameters: () => ({}),
      events: { event: async () => undefined },
      metrics: new DomainMetrics(createRegistry({ defaultMetrics: false })),
    });
    const started: WorkItem = {
      executionId: 'e-1',
      action: 'install',
      instanceIds: ['i-1', 'i-2'],
      clientToken: 'c',
      startTime: new Date(NOW).toISOString(),
    };
    // In the reconcile that started it, the item knows its instances: it waits, no call.
    const same = await t.poll(owner, [started]);
    expect(same.running[0]?.instanceIds).toEqual(['i-1', 'i-2']);
    expect(byId).toEqual([]);
    // The next reconcile reads it back from status (no instance IDs there): read by ID, and the
    // instances come back with it (a caller planning new batches sees them busy).
    const readBack = fromTracked(toTracked(started, false));
    expect(readBack.instanceIds).toEqual([]);
    const next = await t.poll(owner, [readBack]);
    expect(byId).toEqual(['e-1']);
    expect(next.running[0]?.instanceIds).toEqual(['i-1', 'i-2']);
  });
});
