/**
 * PatchPolicy installs on the fast tier (fake clock shared with the emulator): nothing outside
 * the window; inside it only non-compliant reachable targets in ≤ 50-instance executions, with
 * snapshots recorded in rows and rebootIfNeeded honoured; a window that closes mid-rollout starts
 * no new batch and the next window starts with the leftovers; a controller restart never starts an
 * execution twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { fleetIds } from '../harness/fast.js';
import { cond, patchSeed, REGION, startPatchStack, type PatchStack } from '../harness/fast-patchpolicy.js';

function itemIds(execs: Array<{ items: Array<{ instanceId: string }> }>): string[] {
  return execs.flatMap((e) => e.items.map((i) => i.instanceId));
}

describe('PatchPolicy installs inside a maintenance window', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({
      seed: {
        regions: {
          [REGION]: {
            generate: [
              ...(patchSeed('in', 60, 60).regions?.[REGION]?.generate as object[]),
              ...(patchSeed('wc', 0, 120).regions?.[REGION]?.generate as object[]),
              ...(patchSeed('rs', 0, 80).regions?.[REGION]?.generate as object[]),
              ...(patchSeed('pr', 0, 10).regions?.[REGION]?.generate as object[]),
            ] as never,
          },
        },
      },
    });
  });
  afterAll(() => s.stop());

  it('does nothing outside the window, then patches only non-compliant targets with snapshots and reboots', async () => {
    const created = s.apply('web', {
      targets: { tags: [{ key: 'fleet', value: 'in' }] },
      interval: '1h',
      scan: { schedule: '30 0 * * *', timeZone: 'Asia/Shanghai' }, // 16:30Z
      install: {
        maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'Asia/Shanghai' }, // Fri 17:00Z
        rebootIfNeeded: true,
        snapshot: { enabled: true, retentionDays: 7 },
        minRemaining: '30m',
      },
    });
    const uid = created.metadata.uid ?? '';
    await s.reconcile('web');
    expect(s.get('web')?.status?.window).toMatchObject({ open: false, nextOpen: '2026-06-05T17:00:00Z' });
    // Monday's scan: compliance known, but no install outside the window.
    s.advanceTo('2026-06-01T16:30:00.500Z');
    await s.reconcile('web');
    let obj = await s.settle('web');
    expect(obj?.status?.summary).toMatchObject({ compliant: 60, nonCompliant: 60 });
    expect(await s.executions(uid, 'install')).toHaveLength(0);
    s.advanceTo('2026-06-05T16:59:00Z');
    await s.reconcile('web');
    expect(await s.executions(uid, 'install')).toHaveLength(0);
    // Friday 16:30Z scan, then the window opens at 17:00Z (01:00 Saturday in Shanghai).
    s.advanceTo('2026-06-05T16:30:00.500Z');
    s.advanceTo('2026-06-05T16:59:30Z');
    await s.reconcile('web');
    await s.settle('web');
    s.advanceTo('2026-06-05T17:00:00.500Z');
    await s.reconcile('web');
    obj = s.get('web');
    expect(obj?.status?.window).toMatchObject({ open: true, closesAt: '2026-06-05T21:00:00Z' });
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'False', reason: 'InstallInProgress' });
    obj = await s.settle('web');
    const installs = await s.executions(uid, 'install');
    expect(installs.map((e) => e.items.length)).toEqual([50, 10]);
    expect(itemIds(installs).sort()).toEqual(fleetIds('in', 1, 60)); // only the non-compliant ones
    expect(installs[0]?.parameters).toMatchObject({
      action: 'install',
      rebootIfNeed: true,
      whetherCreateSnapshot: true,
      retentionDays: 7,
    });
    expect(obj?.status?.summary).toMatchObject({ targeted: 120, compliant: 120, pendingReboot: 0 });
    expect(cond(obj, 'Compliant')).toMatchObject({ status: 'True', reason: 'AllCompliant' });
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'True', reason: 'Operating' });
    expect(obj?.status?.lastInstall).toMatchObject({
      windowOpensAt: '2026-06-05T17:00:00Z',
      result: 'Succeeded',
      succeeded: 60,
      failed: 0,
      executionCount: 2,
    });
    // Reboots happened: no patch is left pending in the emulator.
    const states = await s.emu.control.getPatchStates(REGION);
    const web = states.filter((p) => p.instanceId.startsWith('i-in'));
    expect(web.flatMap((p) => p.patches.map((x) => x.status)).every((x) => x === 'Installed')).toBe(true);
    // Snapshot IDs in the rows are the emulator's, with their expiry.
    const snaps = await s.emu.control.listSnapshots(REGION);
    const row = obj?.status?.instances?.find((r) => r.instanceId === 'i-in0007');
    const snap = snaps.find((x) => x.instanceId === 'i-in0007');
    expect(row?.snapshots?.[0]?.snapshotId).toBe(snap?.snapshotId);
    expect(Date.parse(row?.snapshots?.[0]?.expiresAt ?? '') - Date.parse(snap?.creationTime ?? '')).toBe(
      7 * 86_400_000,
    );
    expect(snaps.filter((x) => x.instanceId.startsWith('i-in'))).toHaveLength(60);
    expect(obj?.status?.instances?.find((r) => r.instanceId === 'i-in0090')?.snapshots).toBeUndefined();
    const reasons = s.events.events.filter((e) => e.name === 'web').map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['WindowOpened', 'InstallStarted', 'InstallCompleted']));
    // The occurrence installs at most once per target: nothing more starts in this window.
    s.advanceTo('2026-06-05T18:00:00Z');
    await s.reconcile('web');
    expect(await s.executions(uid, 'install')).toHaveLength(2);
  });

  it('leaves instances PendingReboot (not compliant) when rebootIfNeeded is false', async () => {
    s.advanceTo('2026-06-06T01:00:00Z');
    const created = s.apply('noreboot', {
      targets: { instanceIds: fleetIds('pr', 1, 10) },
      install: {
        maintenanceWindow: { schedule: '0 * * * *', duration: '2h' },
        minRemaining: '10m',
      },
    });
    s.store.annotate('default', 'noreboot', { [SCAN_REQUESTED_ANNOTATION]: '1' });
    await s.reconcile('noreboot');
    await s.settle('noreboot'); // the scan; the install starts in the reconcile that folds it
    const obj = await s.settle('noreboot');
    expect(await s.executions(created.metadata.uid ?? '', 'install')).toHaveLength(1);
    expect(obj?.status?.summary).toMatchObject({ pendingReboot: 10, compliant: 0 });
    expect(obj?.status?.instances?.[0]).toMatchObject({ state: 'PendingReboot', pendingRebootCount: 1 });
    expect(cond(obj, 'Compliant')).toMatchObject({ status: 'False', reason: 'NonCompliant' });
    expect(cond(obj, 'Compliant')?.message).toContain('10 pending reboot');
  });

  it('starts no new batch once less than minRemaining is left; the next window starts with the leftovers', async () => {
    s.advanceTo('2026-06-08T00:00:00Z');
    const created = s.apply('close', {
      targets: { tags: [{ key: 'fleet', value: 'wc' }] },
      install: {
        maintenanceWindow: { schedule: '0 1 * * SAT', duration: '1h' },
        minRemaining: '30m',
      },
    });
    const uid = created.metadata.uid ?? '';
    s.store.annotate('default', 'close', { [SCAN_REQUESTED_ANNOTATION]: 'first' });
    await s.reconcile('close');
    let obj = await s.settle('close');
    expect(obj?.status?.summary).toMatchObject({ nonCompliant: 120 });
    s.advanceTo('2026-06-13T01:00:00.500Z');
    await s.reconcile('close');
    expect((await s.executions(uid, 'install')).map((e) => e.items.length)).toEqual([50]);
    // 29 minutes left when the first batch ends: no second batch.
    s.advanceTo('2026-06-13T01:31:00Z');
    obj = await s.settle('close');
    expect(await s.executions(uid, 'install')).toHaveLength(1);
    expect(obj?.status?.lastInstall).toMatchObject({ result: 'Succeeded', succeeded: 50 });
    expect(obj?.status?.summary).toMatchObject({ nonCompliant: 70, pendingReboot: 50 });
    s.advanceTo('2026-06-13T02:00:00.500Z');
    await s.reconcile('close');
    expect(s.events.events.filter((e) => e.name === 'close').map((e) => e.reason)).toContain('WindowClosed');
    expect(s.get('close')?.status?.window).toMatchObject({ open: false, nextOpen: '2026-06-20T01:00:00Z' });
    // Next Saturday: the 70 left over go first.
    s.advanceTo('2026-06-20T01:00:00.500Z');
    await s.reconcile('close');
    const installs = await s.executions(uid, 'install');
    expect(installs).toHaveLength(2);
    expect(itemIds([installs[1]!]).sort()).toEqual(fleetIds('wc', 51, 100));
    expect(s.get('close')?.status?.lastInstall?.windowOpensAt).toBe('2026-06-20T01:00:00Z');
  });

  it('never starts an execution twice across a crash before the status write or a restart', async () => {
    s.advanceTo('2026-06-21T00:00:00Z');
    const created = s.apply('restart', {
      targets: { tags: [{ key: 'fleet', value: 'rs' }] },
      install: { maintenanceWindow: { schedule: '0 * * * *', duration: '2h' }, minRemaining: '1m' },
    });
    const uid = created.metadata.uid ?? '';
    s.store.annotate('default', 'restart', { [SCAN_REQUESTED_ANNOTATION]: 'x' });
    await s.reconcile('restart');
    // Settle the scan without letting an install start: stop at the first reconcile after it.
    for (
      let i = 0;
      i < 500 && (s.get('restart')?.status?.executions ?? []).some((e) => e.action === 'scan');
      i++
    ) {
      const before = structuredClone(s.get('restart')?.status);
      await s.reconcile('restart');
      const after = s.get('restart');
      if ((after?.status?.executions ?? []).some((e) => e.action === 'install')) {
        // The reconcile that started the first install batch "crashed" before its status write.
        after!.status = before;
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
      s.clock.advance(10); // real time passes (polls read the fleet's listing, aged on this clock)
    }
    expect(await s.executions(uid, 'install')).toHaveLength(1);
    s.restart();
    await s.reconcile('restart');
    expect(await s.executions(uid, 'install')).toHaveLength(1); // adopted, not started again
    expect(s.get('restart')?.status?.executions?.map((e) => e.action)).toEqual(['install']);
    s.restart(); // and a plain restart while it runs
    const obj = await s.settle('restart', 'default', 30_000);
    const installs = await s.executions(uid, 'install');
    expect(installs.map((e) => e.items.length)).toEqual([50, 30]);
    const ids = itemIds(installs);
    expect(new Set(ids).size).toBe(ids.length); // each instance in exactly one execution
    expect(obj?.status?.summary).toMatchObject({ targeted: 80, patching: 0 });
  });
});
