/**
 * PatchPolicy domain metrics (DESIGN §5) on an injected prom-client Registry. Labels are bounded:
 * namespace and name of the policy, plus `state` (the 8 summary keys) or `severity` (Critical,
 * Important, Moderate, Low, Unspecified, Other, Unknown) — never an instance ID.
 */
import { Gauge, type Registry } from 'prom-client';

/** Severity label values, pre-set to 0 for every policy. */
export const SEVERITIES = [
  'Critical',
  'Important',
  'Moderate',
  'Low',
  'Unspecified',
  'Other',
  'Unknown',
] as const;
/** `state` label values of `ecsops_patch_instances`. */
export const PATCH_STATES = [
  'targeted',
  'compliant',
  'nonCompliant',
  'pendingReboot',
  'failed',
  'unreachable',
  'unscanned',
  'patching',
] as const;

/** One policy's values. */
export interface PatchReport {
  namespace: string;
  name: string;
  /** Summary counts by state key. */
  counts?: Record<string, number>;
  /** Missing patches by severity label. */
  missing?: ReadonlyMap<string, number>;
  /** 1 while the install window is open (0 without a window). */
  windowOpen: boolean;
  /** End of the last finished scan, seconds since the epoch. */
  lastScanSeconds?: number;
  /** Age of the oldest non-compliance, seconds (0 when all compliant). */
  oldestMissingAgeSeconds?: number;
}

/** `ecsops_patch_*` gauges. */
export class PatchMetrics {
  private readonly instances: Gauge<'namespace' | 'name' | 'state'>;
  private readonly missing: Gauge<'namespace' | 'name' | 'severity'>;
  private readonly windowOpen: Gauge<'namespace' | 'name'>;
  private readonly lastScan: Gauge<'namespace' | 'name'>;
  private readonly oldest: Gauge<'namespace' | 'name'>;

  constructor(registry: Registry) {
    const labels = ['namespace', 'name'] as const;
    this.instances = new Gauge({
      name: 'ecsops_patch_instances',
      help: 'PatchPolicy targets by compliance state (targeted, compliant, nonCompliant, pendingReboot, failed, unreachable, unscanned, patching).',
      labelNames: [...labels, 'state'],
      registers: [registry],
    });
    this.missing = new Gauge({
      name: 'ecsops_patch_missing_patches',
      help: "Missing patches over a PatchPolicy's targets by severity (Unknown: instances whose patch details were not read).",
      labelNames: [...labels, 'severity'],
      registers: [registry],
    });
    this.windowOpen = new Gauge({
      name: 'ecsops_patch_window_open',
      help: "1 while the PatchPolicy's maintenance window is open.",
      labelNames: labels,
      registers: [registry],
    });
    this.lastScan = new Gauge({
      name: 'ecsops_patch_last_scan_timestamp_seconds',
      help: "End of the PatchPolicy's last finished scan, seconds since the epoch.",
      labelNames: labels,
      registers: [registry],
    });
    this.oldest = new Gauge({
      name: 'ecsops_patch_oldest_missing_patch_age_seconds',
      help: 'Seconds since the longest-non-compliant target was first seen missing patches (0 when all are compliant); alert on it for patch SLAs.',
      labelNames: labels,
      registers: [registry],
    });
  }

  /** Sets every series of one policy. */
  report(r: PatchReport): void {
    const l = { namespace: r.namespace, name: r.name };
    if (r.counts) for (const state of PATCH_STATES) this.instances.set({ ...l, state }, r.counts[state] ?? 0);
    if (r.missing)
      for (const severity of SEVERITIES) this.missing.set({ ...l, severity }, r.missing.get(severity) ?? 0);
    this.windowOpen.set(l, r.windowOpen ? 1 : 0);
    if (r.lastScanSeconds !== undefined) this.lastScan.set(l, r.lastScanSeconds);
    if (r.oldestMissingAgeSeconds !== undefined) this.oldest.set(l, r.oldestMissingAgeSeconds);
  }

  /** Removes every series of one policy (deleted). */
  delete(namespace: string, name: string): void {
    const l = { namespace, name };
    for (const state of PATCH_STATES) this.instances.remove({ ...l, state });
    for (const severity of SEVERITIES) this.missing.remove({ ...l, severity });
    this.windowOpen.remove(l);
    this.lastScan.remove(l);
    this.oldest.remove(l);
  }
}
