/**
 * `zoneOrder` on the fast tier (issue 23): AppRelease batches (`spec.strategy.zoneOrder`) and
 * PatchPolicy install executions (`spec.install.zoneOrder`) never hold instances of two zones,
 * and go zone by zone in the given order — checked on the emulator's own records of the
 * RunCommand invocations and OOS executions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID_TAG } from '../../src/api/common.js';
import type { Seed } from '../../src/emulator/index.js';
import { REGION } from '../harness/fast.js';
import { appSpec, readyOf, startAppReleaseStack, type AppReleaseStack } from '../harness/fast-apprelease.js';
import {
  patchSeed,
  reachInstallWindow,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

const ZONES = ['cn-hangzhou-h', 'cn-hangzhou-i', 'cn-hangzhou-k'];

/** The same seed with its generated instances spread over ZONES (round-robin). */
function inZones(seed: Seed): Seed {
  for (const g of [seed.regions?.[REGION]?.generate ?? []].flat()) g.zones = ZONES;
  return seed;
}

/** Zone of every instance of the region, from the emulator. */
async function zonesOf(s: { emu: AppReleaseStack['emu'] }): Promise<Map<string, string>> {
  const list = await s.emu.control.listInstances(REGION);
  return new Map(list.map((i) => [i.instanceId, i.zoneId]));
}

/** The zones of each batch in order, and the order in which zones were first visited. */
function visit(batches: string[][], zone: Map<string, string>) {
  const perBatch = batches.map((ids) => [...new Set(ids.map((id) => zone.get(id)))]);
  const order: string[] = [];
  for (const zs of perBatch) for (const z of zs) if (order.at(-1) !== z) order.push(z as string);
  return { perBatch, order };
}

describe('AppRelease strategy.zoneOrder (fast tier)', () => {
  let s: AppReleaseStack;
  beforeAll(async () => {
    s = await startAppReleaseStack({
      seed: inZones({
        regions: {
          [REGION]: { generate: [{ count: 12, idPrefix: 'i-zr', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      }),
    });
  });
  afterAll(() => s.stop());

  it('deploys zone by zone in the given order, never two zones in one batch', async () => {
    const artifact = s.artifacts.add('shop-1', { 'app.sh': '#!/bin/bash\nexit 0\n' }, s.root);
    const created = s.apply(
      'shop',
      appSpec(s, artifact, {
        healthCheck: undefined,
        strategy: {
          batchSize: 3,
          canary: { instances: 1, pause: false },
          maxErrors: 0,
          zoneOrder: ['cn-hangzhou-k'],
        },
      }),
    );
    const obj = await s.until('shop', (o) => readyOf(o)?.status === 'True');
    expect(readyOf(obj)?.reason).toBe('RolloutSucceeded');
    const deploys = (await s.emu.control.listInvocations())
      .filter(
        (v) => v.tags[OWNER_UID_TAG] === created.metadata.uid && String(v.parameters.action) === 'deploy',
      )
      .sort((a, b) => a.creationTime.localeCompare(b.creationTime));
    const batches = deploys.map((v) => v.instances.map((i) => i.instanceId));
    expect(batches.flat().sort()).toHaveLength(12);
    const { perBatch, order } = visit(batches, await zonesOf(s));
    expect(perBatch.every((zs) => zs.length === 1)).toBe(true);
    // k first (listed), then the others in sorted order; each zone once.
    expect(order).toEqual(['cn-hangzhou-k', 'cn-hangzhou-h', 'cn-hangzhou-i']);
    // 4 instances per zone: canary 1 + 3 in k, then 3 + 1 per zone (a batch ends at a zone's end).
    expect(batches.map((b) => b.length)).toEqual([1, 3, 3, 1, 3, 1]);
  });
});

describe('PatchPolicy install.zoneOrder (fast tier)', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: inZones(patchSeed('zp', 0, 9)) });
  });
  afterAll(() => s.stop());

  it('runs install executions of one zone at a time, zone after zone', async () => {
    const created = await reachInstallWindow(s, 'zoned', 'zp', { parallelBatches: 3, zoneOrder: [] });
    await s.settle('zoned');
    const installs = await s.executions(created.metadata.uid ?? '', 'install');
    const batches = installs.map((e) => e.items.map((i) => i.instanceId));
    expect(batches.flat().sort()).toEqual(
      Array.from({ length: 9 }, (_, i) => `i-zp${String(i + 1).padStart(4, '0')}`),
    );
    const { perBatch, order } = visit(batches, await zonesOf(s));
    expect(perBatch.every((zs) => zs.length === 1)).toBe(true);
    expect(order).toEqual(['cn-hangzhou-h', 'cn-hangzhou-i', 'cn-hangzhou-k']);
  });
});
