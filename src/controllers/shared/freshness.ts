/**
 * `status.stateFreshness` and `ecsops_state_oldest_read_age_seconds` of the kinds that read
 * per-instance state through the region's fleet view (EcsExtension package states, PatchPolicy
 * patch states): one derivation for both (issue 25).
 *
 * `lastFullResyncTime` claims that every target's state was read one by one at or after it. The
 * fleet view knows the exact oldest read (`RegionFleet.freshness`), which moves forward every few
 * minutes as the jittered full resync re-reads instances; writing it each time would cost a status
 * write per interval for a fleet where nothing changed. So the recorded time moves forward only in
 * steps of at least half the full-resync period (it stays true: the oldest read only gets newer),
 * and moves back at once when the oldest read is older than the recorded time (a target read
 * earlier joined), so the claim never becomes false. The exact age is the gauge's.
 */
import { DEFAULT_DRIFT_DETECTION, type DriftDetectionMode, type StateFreshness } from '../../api/common.js';
import { toMetaTime } from '../../runtime/conditions.js';

/** What `RegionFleet.freshness(kind, ids)` answers (ms of the fleet view's clock). */
export interface FleetFreshness {
  /** The oldest per-instance read among the targets; undefined when none is known. */
  oldestReadMs?: number;
  /** The full-resync period, ms. */
  fullResyncMs: number;
}

/** The fleet view's freshness query (structural: `RegionFleet` satisfies it). */
export interface FreshnessSource {
  freshness(kind: 'packages' | 'patches', ids: readonly string[]): FleetFreshness;
  /** The fleet view's clock, ms (its read stamps use it). */
  nowMs(): number;
}

/** The result of {@link stateFreshness}. */
export interface FreshnessResult {
  /** The new `status.stateFreshness` (the previous object itself when nothing moved). */
  status: StateFreshness;
  /** Seconds since the oldest per-instance read (for the gauge); undefined when none is known. */
  oldestReadAgeSeconds?: number;
}

/** `spec.driftDetection` with its default applied. */
export function driftDetectionOf(spec: { driftDetection?: DriftDetectionMode }): DriftDetectionMode {
  return spec.driftDetection ?? DEFAULT_DRIFT_DETECTION;
}

/**
 * The next `status.stateFreshness` from the previous one and the fleet's answer. Pure.
 * - mode changed, or no previous value: the mode and the oldest read (if known), as they are;
 * - otherwise `lastFullResyncTime` becomes the oldest read when that is at least
 *   `fullResyncMs / 2` newer than the recorded time, or older than it (the claim must stay true);
 *   else the previous object is returned unchanged (no status write);
 * - no read known (no reachable target): the previous time is kept (vacuously true).
 * The fleet view's clock is ms since the epoch (`RegionFleetOptions.now`, default `Date.now`; the
 * process's wall clock, a fake one in the fast tier), so its stamps are written as they are: RFC
 * 3339 with whole seconds, rounded down (the claim "read at or after" stays true).
 * @param prev the recorded `status.stateFreshness`, if any.
 * @param mode this generation's `spec.driftDetection` (default applied).
 * @param f the fleet's freshness of the resource's targets.
 * @param fleetNowMs the fleet view's clock now, ms (for the age).
 */
export function stateFreshness(
  prev: StateFreshness | undefined,
  mode: DriftDetectionMode,
  f: FleetFreshness,
  fleetNowMs: number,
): FreshnessResult {
  const age = f.oldestReadMs !== undefined ? Math.max(0, (fleetNowMs - f.oldestReadMs) / 1000) : undefined;
  const out = (status: StateFreshness): FreshnessResult => ({
    status,
    ...(age !== undefined ? { oldestReadAgeSeconds: age } : {}),
  });
  const oldest = f.oldestReadMs !== undefined ? toMetaTime(new Date(f.oldestReadMs)) : undefined;
  if (!prev || prev.driftDetection !== mode) {
    return out({ driftDetection: mode, ...(oldest ? { lastFullResyncTime: oldest } : {}) });
  }
  if (!oldest) return out(prev);
  const recorded = prev.lastFullResyncTime ? Date.parse(prev.lastFullResyncTime) : NaN;
  const next = Date.parse(oldest);
  if (Number.isNaN(recorded) || next < recorded || next - recorded >= f.fullResyncMs / 2) {
    return out({ driftDetection: mode, lastFullResyncTime: oldest });
  }
  return out(prev);
}

/**
 * {@link stateFreshness} for a resource whose targets `ids` were read through `fleet` as `kind`
 * (`packages`: EcsExtension; `patches`: PatchPolicy).
 */
export function readStateFreshness(
  fleet: FreshnessSource,
  kind: 'packages' | 'patches',
  ids: readonly string[],
  prev: StateFreshness | undefined,
  mode: DriftDetectionMode,
): FreshnessResult {
  return stateFreshness(prev, mode, fleet.freshness(kind, ids), fleet.nowMs());
}
