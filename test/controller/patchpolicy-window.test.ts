/**
 * MaintenanceWindow on the fast tier (fake clock): one window referenced by three PatchPolicies
 * with a blackout date, re-planning all three when the window changes; a missing window stalls a
 * policy with its name until it appears; DST behaves as Kubernetes CronJob on spring-forward day
 * and never opens twice in the autumn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCAN_REQUESTED_ANNOTATION } from '../../src/api/patchpolicy.js';
import { fleetIds } from '../harness/fast.js';
import {
  cond,
  patchSeed,
  reachInstallWindow,
  startPatchStack,
  type PatchStack,
} from '../harness/fast-patchpolicy.js';

describe('MaintenanceWindow shared by policies', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('mw', 0, 30) });
  });
  afterAll(() => s.stop());

  it('skips the blackout date for all three policies and re-plans them when the window changes', async () => {
    s.applyWindow('weekend', {
      schedule: '0 1 * * SAT',
      duration: '4h',
      timeZone: 'UTC',
      blackoutDates: ['2026-06-06'],
    });
    await s.reconcileWindow('weekend');
    let mw = s.getWindow('weekend');
    expect(mw?.status).toMatchObject({
      open: false,
      nextOpen: '2026-06-13T01:00:00Z',
      nextClose: '2026-06-13T05:00:00Z',
    });
    expect(cond(mw, 'Ready')).toMatchObject({ status: 'True', reason: 'WindowClosed' });
    expect(mw?.metadata.finalizers ?? []).toEqual([]);
    const names = ['team-a', 'team-b', 'team-c'];
    names.forEach((name, i) =>
      s.apply(name, {
        targets: { instanceIds: fleetIds('mw', i * 10 + 1, i * 10 + 10) },
        install: { maintenanceWindowRef: { name: 'weekend' } },
      }),
    );
    for (const name of names) {
      s.store.annotate('default', name, { [SCAN_REQUESTED_ANNOTATION]: 'initial' });
      await s.reconcile(name);
      await s.settle(name);
    }
    // Saturday 2026-06-06 01:00: a blackout date. No policy installs.
    s.advanceTo('2026-06-06T01:00:00.500Z');
    await s.reconcileWindow('weekend');
    expect(s.getWindow('weekend')?.status?.open).toBe(false);
    for (const name of names) {
      await s.reconcile(name);
      const obj = s.get(name);
      expect(obj?.status?.window).toMatchObject({
        name: 'weekend',
        open: false,
        nextOpen: '2026-06-13T01:00:00Z',
      });
      expect(await s.executions(obj?.metadata.uid ?? '', 'install')).toHaveLength(0);
      expect(cond(obj, 'Compliant')?.status).toBe('False');
    }
    // Lift the blackout: the window controller asks all three to re-plan; none is edited.
    s.enqueued.length = 0;
    s.applyWindow('weekend', { schedule: '0 1 * * SAT', duration: '4h', timeZone: 'UTC' });
    await s.reconcileWindow('weekend');
    mw = s.getWindow('weekend');
    expect(mw?.status).toMatchObject({
      open: true,
      opensAt: '2026-06-06T01:00:00Z',
      nextClose: '2026-06-06T05:00:00Z',
    });
    expect(cond(mw, 'Ready')).toMatchObject({ status: 'True', reason: 'WindowOpen' });
    expect([...s.enqueued].sort()).toEqual(names.map((n) => `default/${n}`));
    for (const key of s.enqueued) await s.reconcile(key.split('/')[1] as string);
    for (const name of names) {
      const obj = s.get(name);
      expect(obj?.metadata.generation).toBe(1);
      expect(obj?.status?.window).toMatchObject({ open: true, closesAt: '2026-06-06T05:00:00Z' });
      expect(await s.executions(obj?.metadata.uid ?? '', 'install')).toHaveLength(1);
    }
  });

  it('stalls a policy whose window is missing, naming it, and recovers when it is created', async () => {
    s.apply('orphan', {
      targets: { instanceIds: fleetIds('mw', 1, 2) },
      install: { maintenanceWindowRef: { name: 'nightly' } },
    });
    await s.reconcile('orphan');
    let obj = s.get('orphan');
    expect(cond(obj, 'Stalled')).toMatchObject({ status: 'True', reason: 'MaintenanceWindowNotFound' });
    expect(cond(obj, 'Stalled')?.message).toContain('MaintenanceWindow default/nightly');
    expect(cond(obj, 'Ready')).toMatchObject({ status: 'False', reason: 'MaintenanceWindowNotFound' });
    s.enqueued.length = 0;
    s.applyWindow('nightly', { schedule: '0 2 * * *', duration: '2h' });
    await s.reconcileWindow('nightly');
    expect(s.enqueued).toEqual(['default/orphan']);
    await s.reconcile('orphan');
    obj = s.get('orphan');
    expect(cond(obj, 'Stalled')).toBeUndefined();
    expect(obj?.status?.window).toMatchObject({ name: 'nightly' });
  });
});

describe('MaintenanceWindow across DST in America/New_York (CronJob semantics)', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('dst', 1, 0), start: new Date('2026-03-08T05:00:00Z') });
  });
  afterAll(() => s.stop());

  /** Steps the clock every 10 minutes from `from` to `to`, reconciling the window, and returns the distinct openings seen. */
  async function openingsBetween(from: string, to: string): Promise<string[]> {
    const seen = new Set<string>();
    s.advanceTo(from);
    for (let t = Date.parse(from); t <= Date.parse(to); t += 10 * 60_000) {
      s.advanceTo(new Date(t));
      await s.reconcileWindow('ny');
      const st = s.getWindow('ny')?.status;
      if (st?.open && st.opensAt) seen.add(st.opensAt);
    }
    return [...seen];
  }

  it('does not open at 02:30 on spring-forward day (the time does not exist), as CronJob', async () => {
    s.applyWindow('ny', { schedule: '30 2 * * *', duration: '1h', timeZone: 'America/New_York' });
    await s.reconcileWindow('ny');
    // 2026-03-08 00:00 EST: the next opening is Monday 02:30 EDT, not 03:00 on Sunday.
    expect(s.getWindow('ny')?.status?.nextOpen).toBe('2026-03-09T06:30:00Z');
    expect(await openingsBetween('2026-03-08T05:00:00Z', '2026-03-09T04:59:00Z')).toEqual([]);
    expect(await openingsBetween('2026-03-09T05:00:00Z', '2026-03-10T04:59:00Z')).toEqual([
      '2026-03-09T06:30:00Z',
    ]);
  });

  it('opens once on fall-back day, also inside the repeated hour', async () => {
    s.advanceTo('2026-11-01T04:00:00Z'); // 00:00 EDT
    // 01:30 happens twice that night (05:30Z EDT, then 06:30Z EST): CronJob would open twice.
    s.applyWindow('ny-0130', { schedule: '30 1 * * *', duration: '20m', timeZone: 'America/New_York' });
    await s.reconcileWindow('ny');
    expect(s.getWindow('ny')?.status?.nextOpen).toBe('2026-11-01T07:30:00Z'); // 02:30 EST
    const seen: Record<string, Set<string>> = { ny: new Set(), 'ny-0130': new Set() };
    for (
      let t = Date.parse('2026-11-01T04:00:00Z');
      t <= Date.parse('2026-11-02T04:59:00Z');
      t += 5 * 60_000
    ) {
      s.advanceTo(new Date(t));
      for (const name of Object.keys(seen)) {
        await s.reconcileWindow(name);
        const st = s.getWindow(name)?.status;
        if (st?.open && st.opensAt) seen[name]?.add(st.opensAt);
      }
    }
    expect([...(seen.ny ?? [])]).toEqual(['2026-11-01T07:30:00Z']);
    expect([...(seen['ny-0130'] ?? [])]).toEqual(['2026-11-01T05:30:00Z']);
  });
});

describe('the window closes while installs run (cancelAtWindowEnd)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('reads throttled at the close: CancelExecution is sent anyway, also while suspended; the occurrence ends Cancelled', async () => {
    // 20 instances: one install execution of 20 with rateControl, running when the window closes.
    const s = await startPatchStack({ seed: patchSeed('wz', 0, 20), timeScale: 0.05 });
    try {
      const created = await reachInstallWindow(s, 'close', 'wz', { cancelAtWindowEnd: true });
      const uid = created.metadata.uid ?? '';
      const running = await s.executions(uid, 'install');
      expect(running.length).toBeGreaterThan(0);
      // The window closes at 05:00 Asia/Shanghai (21:00Z); every read fails for a while from then,
      // and the user suspends the policy at that moment too.
      const rules = await Promise.all(
        [
          'DescribeInstances',
          'DescribeCloudAssistantStatus',
          'ListInstancePatchStates',
          'ListExecutions',
        ].map((action) =>
          s.emu.control.addFaultRule({ action, code: 'Throttling.User', httpStatus: 400, count: 10_000 }),
        ),
      );
      s.store.apply({ ...s.get('close')!, spec: { ...s.get('close')!.spec, suspend: true } });
      s.advanceTo('2026-06-05T21:00:01Z');
      await s.reconcile('close');
      expect((await s.emu.control.requestCounts()).CancelExecution ?? 0).toBeGreaterThanOrEqual(
        running.length,
      );
      for (const r of rules) await s.emu.control.removeFaultRule(r);
      let obj = s.get('close');
      for (let i = 0; i < 300 && obj?.status?.lastInstall?.result === 'Running'; i++) {
        await s.reconcile('close');
        await sleep(20);
        obj = s.get('close');
      }
      const execs = await s.executions(uid, 'install');
      expect(execs.every((e) => e.status === 'Cancelled' || e.status === 'Success')).toBe(true);
      expect(obj?.status?.lastInstall?.result).toMatch(/Cancelled|PartiallyCancelled/);
      expect(obj?.status?.lastInstall?.failed).toBe(0);
      expect(obj?.status?.lastInstall?.cancelled).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  });
});
