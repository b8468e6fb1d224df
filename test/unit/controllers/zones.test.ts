/** Zone-by-zone batching (`zoneOrder`, src/controllers/shared/zones.ts). */
import { describe, expect, it } from 'vitest';
import type { ResolvedTarget } from '../../../src/controllers/shared/targets.js';
import { nextZoneIds, orderZones, zoneOf } from '../../../src/controllers/shared/zones.js';

function target(instanceId: string, zoneId?: string): ResolvedTarget {
  return {
    instanceId,
    reachable: true,
    instance: {
      instanceId,
      regionId: 'cn-hangzhou',
      status: 'Running',
      tags: [],
      ...(zoneId ? { zoneId } : {}),
    },
  };
}

// i-1..i-9: zones h, k, i in turn; i-10 has no ZoneId.
const targets = [
  ...Array.from({ length: 9 }, (_, i) => target(`i-${i + 1}`, `cn-hangzhou-${'hki'[i % 3]}`)),
  target('i-10'),
];
const zone = zoneOf(targets);
const ids = targets.map((t) => t.instanceId);

describe('zoneOf', () => {
  it('maps each target to its ZoneId; unknown IDs and missing zones are ""', () => {
    expect(zone('i-1')).toBe('cn-hangzhou-h');
    expect(zone('i-2')).toBe('cn-hangzhou-k');
    expect(zone('i-10')).toBe('');
    expect(zone('i-nope')).toBe('');
  });
});

describe('orderZones', () => {
  it('puts listed zones first in list order, then the rest sorted, the unknown zone last', () => {
    const zones = ['', 'cn-hangzhou-k', 'cn-hangzhou-i', 'cn-hangzhou-h', 'cn-hangzhou-i'];
    expect(orderZones(zones, [])).toEqual(['cn-hangzhou-h', 'cn-hangzhou-i', 'cn-hangzhou-k', '']);
    expect(orderZones(zones, ['cn-hangzhou-k'])).toEqual([
      'cn-hangzhou-k',
      'cn-hangzhou-h',
      'cn-hangzhou-i',
      '',
    ]);
    expect(orderZones(zones, ['cn-hangzhou-i', 'cn-hangzhou-z', 'cn-hangzhou-k'])).toEqual([
      'cn-hangzhou-i',
      'cn-hangzhou-k',
      'cn-hangzhou-h',
      '',
    ]);
  });
});

describe('nextZoneIds', () => {
  it('without zoneOrder returns every ID (batches may mix zones)', () => {
    expect(nextZoneIds(ids, zone, undefined)).toEqual(ids);
  });

  it('returns only the first zone in order that has any, keeping the given order', () => {
    expect(nextZoneIds(ids, zone, [])).toEqual(['i-1', 'i-4', 'i-7']);
    expect(nextZoneIds(ids, zone, ['cn-hangzhou-i'])).toEqual(['i-3', 'i-6', 'i-9']);
    // Zone h done: the next one in sorted order.
    expect(nextZoneIds(['i-9', 'i-2', 'i-3', 'i-10'], zone, [])).toEqual(['i-9', 'i-3']);
    // Only instances without a zone left: they go last, as one group.
    expect(nextZoneIds(['i-10'], zone, [])).toEqual(['i-10']);
    expect(nextZoneIds([], zone, [])).toEqual([]);
  });

  it('while a zone runs, only that zone may start; nothing when it has no more', () => {
    expect(nextZoneIds(ids, zone, [], ['i-2'])).toEqual(['i-2', 'i-5', 'i-8']);
    expect(nextZoneIds(['i-1', 'i-3'], zone, [], ['i-2'])).toEqual([]);
    // Work running in two zones (zoneOrder set mid-rollout): the first of them in order.
    expect(nextZoneIds(ids, zone, ['cn-hangzhou-k'], ['i-1', 'i-2'])).toEqual(['i-2', 'i-5', 'i-8']);
  });

  it('never mixes zones, and visits every zone once, in order, when batches are taken until done', () => {
    let pending = [...ids];
    const visited: string[] = [];
    while (pending.length > 0) {
      const batch = nextZoneIds(pending, zone, ['cn-hangzhou-k']).slice(0, 2);
      expect(new Set(batch.map(zone)).size).toBe(1);
      const z = zone(batch[0] as string);
      if (visited.at(-1) !== z) visited.push(z);
      pending = pending.filter((id) => !batch.includes(id));
    }
    expect(visited).toEqual(['cn-hangzhou-k', 'cn-hangzhou-h', 'cn-hangzhou-i', '']);
  });
});
