/**
 * Zones of targeted instances, and zone-by-zone batching (`zoneOrder`, src/api/zone-order.ts).
 *
 * An instance's zone is ECS `DescribeInstances` `ZoneId`, which target resolution keeps on every
 * {@link ResolvedTarget} (`instance.zoneId`). {@link zoneOf} turns a kind's resolved targets into
 * the lookup other parts need (zone order here; per-zone disruption budgets).
 */
import type { ResolvedTarget } from './targets.js';

/** The zone of an instance ID; `''` when unknown (not a target, or ECS returned no ZoneId). */
export type ZoneOf = (instanceId: string) => string;

/** The zone lookup of a kind's resolved targets (`''` for IDs that are not among them). */
export function zoneOf(targets: readonly ResolvedTarget[]): ZoneOf {
  const zones = new Map(targets.map((t) => [t.instanceId, t.instance.zoneId ?? '']));
  return (id) => zones.get(id) ?? '';
}

/**
 * `zones` in `zoneOrder` order: the listed ones first, in list order; the others in sorted order;
 * the unknown zone `''` last. Duplicates are dropped.
 */
export function orderZones(zones: Iterable<string>, zoneOrder: readonly string[]): string[] {
  const rank = new Map(zoneOrder.map((z, i) => [z, i]));
  return [...new Set(zones)].sort((a, b) => {
    const ra = rank.get(a);
    const rb = rank.get(b);
    if (ra !== undefined || rb !== undefined) return (ra ?? Infinity) - (rb ?? Infinity);
    if (a === '' || b === '') return a === '' ? (b === '' ? 0 : 1) : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * What may start next under `zoneOrder` (undefined: no zone order, `ids` unchanged): the
 * instances of `ids` (order kept) in ONE zone — the zone of the running work when some runs
 * (`running`: instance IDs of this resource's batches in flight; the first of their zones in
 * order), else the first zone in order that has any of `ids`. Nothing when the running work's
 * zone has no more `ids`: the next zone waits for it to finish. So batches never mix zones and
 * zones go one after another.
 */
export function nextZoneIds(
  ids: readonly string[],
  zone: ZoneOf,
  zoneOrder: readonly string[] | undefined,
  running: readonly string[] = [],
): string[] {
  if (zoneOrder === undefined) return [...ids];
  const current =
    running.length > 0
      ? orderZones(running.map(zone), zoneOrder)[0]
      : orderZones(ids.map(zone), zoneOrder)[0];
  return current === undefined ? [] : ids.filter((id) => zone(id) === current);
}
