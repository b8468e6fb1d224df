/**
 * PatchPolicy on the fast tier (real reconciler + cloud layer + emulator, fake clock shared with
 * the emulator): scheduled scans in a time zone, compliance counts, installs inside windows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { fleetIds } from '../harness/fast.js';
import { cond, patchSeed, REGION, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

describe('PatchPolicy: scheduled scan-only policy over 120 instances', () => {
  let s: PatchStack;
  beforeAll(async () => {
    // 40 instances miss 3 patches each (kernel, openssl, systemd); 80 have none.
    s = await startPatchStack({ seed: patchSeed('sc', 80, 40, 3) });
  });
  afterAll(() => s.stop());

  it('scans at 03:00 Asia/Shanghai (19:00Z), not before, and reports exact compliance', async () => {
    const created = s.apply('scan-only', {
      targets: { tags: [{ key: 'fleet', value: 'sc' }] },
      scan: { schedule: '0 3 * * *', timeZone: 'Asia/Shanghai' },
    });
    const uid = created.metadata.uid ?? '';
    let step = await s.reconcile('scan-only');
    expect(step.error).toBeUndefined();
    let obj = s.get('scan-only');
    expect(obj?.status?.nextScan).toBe('2026-06-01T19:00:00Z');
    expect(obj?.status?.summary).toMatchObject({ targeted: 120, unscanned: 120 });
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'True', reason: 'Operating' });
    expect(cond(obj, 'Compliant')).toMatchObject({ status: 'Unknown', reason: 'NotScanned' });
    // The requeue lands on the scheduled minute at the latest.
    expect(step.result?.requeueAfterMs).toBeLessThanOrEqual(10 * 60_000);

    s.advanceTo('2026-06-01T18:59:59Z');
    await s.reconcile('scan-only');
    expect(await s.executions(uid)).toHaveLength(0);

    s.advanceTo('2026-06-01T19:00:00.500Z');
    step = await s.reconcile('scan-only');
    expect(step.error).toBeUndefined();
    const scans = await s.executions(uid, 'scan');
    expect(scans.map((e) => e.items.length)).toEqual([50, 50, 20]);
    obj = s.get('scan-only');
    expect(obj?.status?.lastScan).toMatchObject({
      trigger: 'Schedule',
      scheduledTime: '2026-06-01T19:00:00Z',
      result: 'Running',
      instances: 120,
      executionCount: 3,
    });
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'False', reason: 'ScanInProgress' });
    expect(cond(obj, 'Reconciling')?.status).toBe('True');

    obj = await s.settle('scan-only');
    expect(obj?.status?.lastScan).toMatchObject({ result: 'Succeeded', succeeded: 120, failed: 0 });
    // Exact per-state counts, matching the emulator's patch states.
    const states = await s.emu.control.getPatchStates(REGION);
    const missing = states.filter((p) => p.patches.some((x) => x.status === 'Missing')).length;
    expect(states).toHaveLength(120);
    expect(missing).toBe(40);
    expect(obj?.status?.summary).toEqual({
      targeted: 120,
      compliant: 80,
      nonCompliant: 40,
      pendingReboot: 0,
      failed: 0,
      unreachable: 0,
      unscanned: 0,
      patching: 0,
    });
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'True', reason: 'Operating' });
    expect(cond(obj, 'Ready')?.message).toContain('next scan at 2026-06-02T19:00:00Z');
    expect(cond(obj, 'Compliant')).toMatchObject({ status: 'False', reason: 'NonCompliant' });
    expect(cond(obj, 'Compliant')?.message).toMatch(/^40 of 120 reachable instance\(s\) not compliant/);
    expect(obj?.status?.nextScan).toBe('2026-06-02T19:00:00Z');
    // Rows: non-compliant first, with up to 5 missing patches read from ListInstancePatches.
    const row = obj?.status?.instances?.[0];
    expect(row).toMatchObject({ state: 'NonCompliant', missingCount: 3, failedCount: 0 });
    expect(row?.missingPatches?.map((p) => p.severity).sort()).toEqual(['Critical', 'Important', 'Moderate']);
    expect(row?.lastScanTime).toMatch(/^2026-06-01T19:00:/);
    expect(obj?.status?.instances).toHaveLength(100);
    // Events and metrics.
    const reasons = s.events.events.filter((e) => e.name === 'scan-only').map((e) => e.reason);
    expect(reasons).toContain('ScanStarted');
    expect(reasons).toContain('ScanCompleted');
    const text = await s.registry.metrics();
    expect(text).toMatch(
      /ecsops_patch_instances\{namespace="default",name="scan-only",state="nonCompliant"\} 40/,
    );
    expect(text).toMatch(
      /ecsops_patch_missing_patches\{namespace="default",name="scan-only",severity="Critical"\} 40/,
    );
    expect(text).toMatch(
      /ecsops_patch_last_scan_timestamp_seconds\{namespace="default",name="scan-only"\} \d+/,
    );
    expect(text).not.toMatch(/i-sc\d{4}/); // no per-instance labels
    // No second scan until the next day's run.
    s.advanceTo('2026-06-02T18:00:00Z');
    await s.reconcile('scan-only');
    expect(await s.executions(uid, 'scan')).toHaveLength(3);
  });

  it('runs a scan now on the scan annotation and echoes it; the reconcile annotation only re-reads', async () => {
    const obj = s.get('scan-only');
    const uid = obj?.metadata.uid ?? '';
    s.store.annotate('default', 'scan-only', { 'ecsops.io/reconcile-requested-at': 'r1' });
    await s.reconcile('scan-only');
    expect(await s.executions(uid, 'scan')).toHaveLength(3);
    expect(s.get('scan-only')?.status?.lastHandledReconcileAt).toBe('r1');
    s.store.annotate('default', 'scan-only', { [SCAN_REQUESTED_ANNOTATION]: 'now-1' });
    await s.reconcile('scan-only');
    expect(await s.executions(uid, 'scan')).toHaveLength(6);
    const after = await s.settle('scan-only');
    expect(after?.status?.lastHandledScanAt).toBe('now-1');
    expect(after?.status?.lastScan).toMatchObject({ trigger: 'Requested', result: 'Succeeded' });
    await s.reconcile('scan-only');
    expect(await s.executions(uid, 'scan')).toHaveLength(6);
  });

  it('runs a scan missed during 2 hours of downtime once, not twice, after a restart', async () => {
    const created = s.apply('hourly', {
      targets: { instanceIds: fleetIds('sc', 1, 10) },
      scan: { schedule: '0 * * * *' },
    });
    const uid = created.metadata.uid ?? '';
    s.advanceTo('2026-06-02T20:00:01Z');
    await s.reconcile('hourly');
    await s.settle('hourly');
    expect(await s.executions(uid, 'scan')).toHaveLength(1);
    // Controller down from 20:01 to 22:30: the 21:00 and 22:00 runs are missed.
    s.advanceTo('2026-06-02T22:30:00Z');
    s.restart();
    await s.reconcile('hourly');
    await s.settle('hourly');
    await s.reconcile('hourly');
    expect(await s.executions(uid, 'scan')).toHaveLength(2);
    expect(s.get('hourly')?.status?.lastScheduledScanTime).toBe('2026-06-02T22:00:00Z');
    expect(s.get('hourly')?.status?.nextScan).toBe('2026-06-02T23:00:00Z');
  });
});

describe('PatchPolicy: created seconds after its instances were tagged', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('nt', 0, 3, 2) });
  });
  afterAll(() => s.stop());

  it('reads its targets fresh; zero targets is never Compliant=True; a requested scan is not spent on nothing', async () => {
    // Another policy already reads the selector team=web (nothing carries it yet): the shared
    // tag listing holds "no instance" for up to a minute.
    s.apply('early', { targets: { tags: [{ key: 'team', value: 'web' }] } });
    await s.reconcile('early');
    const early = s.get('early');
    expect(early?.status?.summary?.targeted).toBe(0);
    expect(cond(early, 'Compliant')?.status).not.toBe('True');
    // A requested scan with no target waits for one (the request stays unhandled).
    s.store.annotate('default', 'early', { [SCAN_REQUESTED_ANNOTATION]: 'first' });
    await s.reconcile('early');
    expect(s.get('early')?.status?.lastHandledScanAt).toBeUndefined();
    // The instances get the tag; a new policy is created 5 s later.
    for (const id of fleetIds('nt', 1, 3))
      await s.emu.control.updateInstance(REGION, id, { tags: { fleet: 'nt', team: 'web' } });
    s.clock.advance(5_000);
    s.apply('late', { targets: { tags: [{ key: 'team', value: 'web' }] } });
    s.store.annotate('default', 'late', { [SCAN_REQUESTED_ANNOTATION]: 'now' });
    await s.reconcile('late');
    const late = s.get('late');
    expect(late?.status?.summary?.targeted).toBe(3);
    expect(late?.status?.lastScan).toMatchObject({ trigger: 'Requested', instances: 3 });
  });
});

describe('PatchPolicy: process memory survives a failed reconcile', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('pm', 0, 3, 2), options: { maxInstanceRows: 1 } });
  });
  afterAll(() => s.stop());

  it('nonCompliantSince of instances beyond the shown rows is kept after an error', async () => {
    s.apply('mem', { targets: { tags: [{ key: 'fleet', value: 'pm' }] } });
    s.store.annotate('default', 'mem', { [SCAN_REQUESTED_ANNOTATION]: 'now' });
    await s.reconcile('mem');
    await s.settle('mem');
    await s.reconcile('mem');
    let obj = s.get('mem');
    const since = obj?.status?.instances?.[0]?.nonCompliantSince;
    expect(since).toBeDefined();
    // an hour later a reconcile fails (instance reads throttled past the retries) …
    s.clock.advance(3_600_000);
    const rule = await s.emu.control.addFaultRule({
      action: 'DescribeInstances',
      code: 'Throttling.User',
      httpStatus: 400,
      count: 10_000,
    });
    expect((await s.reconcile('mem')).error).toBeDefined();
    await s.emu.control.removeFaultRule(rule);
    // … then the instance shown in the one row leaves the fleet: the next one is shown
    const [first, second] = fleetIds('pm', 1, 2);
    await s.emu.control.releaseInstance(REGION, first as string);
    s.clock.advance(3_600_000);
    await s.reconcile('mem');
    obj = s.get('mem');
    expect(obj?.status?.instances?.[0]).toMatchObject({ instanceId: second, nonCompliantSince: since });
  });
});
