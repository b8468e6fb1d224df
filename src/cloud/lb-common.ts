/**
 * What the CLB (slb.ts) and ALB (alb.ts) clients share: the scheduler rule of traffic control and
 * the merge of health reports. Facts and sources: docs/reference-load-balancers.md.
 */
import type { BackendHealthState, LoadBalancerType } from './types.js';

/**
 * Schedulers under which a backend's weight decides its share of NEW connections, so weight 0
 * drains it (existing keep-alive connections continue either way): CLB listener `wrr`, `wlc`;
 * ALB server group `Wrr`, `Wlc` (lower case here). Under the others (CLB `rr`, `sch`, `tch`,
 * `qch`; ALB `Sch`, `Uch`) the references describe the distribution without weights, so traffic
 * control removes the backend and re-adds it instead.
 */
export const WEIGHTED_SCHEDULERS: Readonly<Record<LoadBalancerType, readonly string[]>> = {
  CLB: ['wrr', 'wlc'],
  ALB: ['wrr', 'wlc'],
};

/**
 * Whether setting weight 0 takes a backend out of rotation (new connections) under `scheduler`
 * (any case; `''` or unknown → false, so the caller falls back to remove + re-add).
 */
export function weightZeroDrains(type: LoadBalancerType, scheduler: string): boolean {
  return WEIGHTED_SCHEDULERS[type].includes(scheduler.toLowerCase());
}

const RANK: Record<BackendHealthState, number> = { Healthy: 0, Unknown: 1, Unhealthy: 2 };

/** The worse of two reports of one backend (listeners disagree): Unhealthy > Unknown > Healthy. */
export function worseHealth(a: BackendHealthState | undefined, b: BackendHealthState): BackendHealthState {
  return a === undefined || RANK[b] > RANK[a] ? b : a;
}

/**
 * The scheduler to report for a group used by several listeners (CLB): the first that does not
 * honour weights (so the controller never relies on weight 0 where one listener ignores it), else
 * the first; `''` when none.
 */
export function weakestScheduler(type: LoadBalancerType, schedulers: readonly string[]): string {
  const lower = schedulers.map((s) => s.toLowerCase()).filter((s) => s !== '');
  return lower.find((s) => !weightZeroDrains(type, s)) ?? lower[0] ?? '';
}

/** `instanceId:port`, the key of {@link LoadBalancerApi.backendHealth} maps. */
export function backendKey(instanceId: string, port: number): string {
  return `${instanceId}:${port}`;
}
