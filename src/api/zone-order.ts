/**
 * `zoneOrder` (issue 23): AppRelease `spec.strategy.zoneOrder` and PatchPolicy
 * `spec.install.zoneOrder` — work goes zone by zone and one batch (AppRelease batch, PatchPolicy
 * install execution) never holds instances of two zones.
 *
 * The value is a list of zone IDs (ECS `DescribeInstances` `ZoneId`, e.g. `cn-hangzhou-h`): the
 * listed zones go first, in list order; zones not listed follow in sorted order; `[]` = every zone
 * in sorted order. Unset = no zone order (batches may mix zones, as before).
 */
import { Type } from '@sinclair/typebox';

/** An Alibaba Cloud zone ID: the region ID plus a suffix, e.g. cn-hangzhou-h or ap-southeast-1a. */
export const ZONE_ID_PATTERN = '^[a-z]{2}(-[a-z0-9]+)+$';

/** The `zoneOrder` list schema (the same for every kind). */
export function ZoneOrderSchema() {
  return Type.Array(Type.String({ pattern: ZONE_ID_PATTERN, minLength: 3, maxLength: 64 }), {
    maxItems: 32,
    'x-kubernetes-list-type': 'set',
    description:
      'Go zone by zone: no batch mixes zones, and a zone starts only when the one before it has nothing left to start and none of its batches runs. Zone IDs (e.g. cn-hangzhou-h) listed go first, in list order; zones not listed follow in sorted order; [] = every zone in sorted order. Unset = batches may mix zones.',
  });
}

/**
 * The spec-level CEL rule that every zone of `<parent>.zoneOrder` belongs to `spec.regionId`
 * (a zone ID is its region ID plus a suffix). `parent` is the CEL path of the object holding
 * `zoneOrder` from the spec, e.g. `self.strategy`.
 */
export function zoneOrderInRegionRule(parent: string, field: string): { rule: string; message: string } {
  return {
    rule: `!has(${parent}) || !has(${parent}.zoneOrder) || ${parent}.zoneOrder.all(z, z.startsWith(self.regionId) && size(z) > size(self.regionId))`,
    message: `every zone in ${field} must be a zone of spec.regionId (its ID starts with the region ID, e.g. cn-hangzhou-h in cn-hangzhou)`,
  };
}
