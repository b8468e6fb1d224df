/**
 * MaintenanceWindow on the fast tier (fake clock): one window referenced by three PatchPolicies
 * with a blackout date, re-planning all three when the window changes; a missing window stalls a
 * policy with its name until it appears; on the DST nights of 2026 every daily and weekly window
 * opens exactly once (spring-forward: at the first instant after the gap, keeping its local end
 * time) while scans keep CronJob semantics; a blackout date holds back a window that runs into it
 * from the evening before, and both the window's and the policies' status name the date.
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
      // The reason is named: the blackout date holds the window back.
      expect(obj?.status?.window?.skipped).toMatchObject({ blackoutDate: '2026-06-06' });
      expect(cond(obj, 'Ready')?.message).toContain('held for blackout date 2026-06-06');
    }
    expect(s.getWindow('weekend')?.status?.skipped).toEqual({
      opensAt: '2026-06-06T01:00:00Z',
      closesAt: '2026-06-06T05:00:00Z',
      blackoutDate: '2026-06-06',
    });
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

/** A DST night of 2026: windows by name → [schedule, expected opensAt, expected closesAt] (4 h each). */
interface Night {
  name: string;
  timeZone: string;
  /** The local day around the change, UTC: [from, to). */
  from: string;
  to: string;
  windows: Record<string, [string, string, string]>;
}

const NIGHTS: Night[] = [
  {
    name: 'America/New_York spring-forward 2026-03-08',
    timeZone: 'America/New_York',
    from: '2026-03-08T05:00:00Z',
    to: '2026-03-09T04:00:00Z',
    windows: {
      'ny-spring-0130': ['30 1 * * *', '2026-03-08T06:30:00Z', '2026-03-08T10:30:00Z'],
      'ny-spring-0230': ['30 2 * * *', '2026-03-08T07:00:00Z', '2026-03-08T10:30:00Z'], // 03:00–06:30 EDT
      'ny-spring-0300': ['0 3 * * *', '2026-03-08T07:00:00Z', '2026-03-08T11:00:00Z'],
      'ny-spring-0230-weekly': ['30 2 * * SUN', '2026-03-08T07:00:00Z', '2026-03-08T10:30:00Z'],
      'ny-spring-0300-weekly': ['0 3 * * 0', '2026-03-08T07:00:00Z', '2026-03-08T11:00:00Z'],
    },
  },
  {
    name: 'Europe/Berlin spring-forward 2026-03-29',
    timeZone: 'Europe/Berlin',
    from: '2026-03-28T23:00:00Z',
    to: '2026-03-29T22:00:00Z',
    windows: {
      'be-spring-0130': ['30 1 * * *', '2026-03-29T00:30:00Z', '2026-03-29T04:30:00Z'],
      'be-spring-0230': ['30 2 * * *', '2026-03-29T01:00:00Z', '2026-03-29T04:30:00Z'], // 03:00–06:30 CEST
      'be-spring-0330': ['30 3 * * *', '2026-03-29T01:30:00Z', '2026-03-29T05:30:00Z'],
      'be-spring-0230-weekly': ['30 2 * * SUN', '2026-03-29T01:00:00Z', '2026-03-29T04:30:00Z'],
    },
  },
  {
    name: 'Europe/Berlin fall-back 2026-10-25',
    timeZone: 'Europe/Berlin',
    from: '2026-10-24T22:00:00Z',
    to: '2026-10-25T23:00:00Z',
    windows: {
      'be-autumn-0130': ['30 1 * * *', '2026-10-24T23:30:00Z', '2026-10-25T03:30:00Z'],
      'be-autumn-0230': ['30 2 * * *', '2026-10-25T00:30:00Z', '2026-10-25T04:30:00Z'], // repeated: CEST one
      'be-autumn-0300': ['0 3 * * *', '2026-10-25T02:00:00Z', '2026-10-25T06:00:00Z'],
      'be-autumn-0230-weekly': ['30 2 * * SUN', '2026-10-25T00:30:00Z', '2026-10-25T04:30:00Z'],
    },
  },
  {
    name: 'America/New_York fall-back 2026-11-01',
    timeZone: 'America/New_York',
    from: '2026-11-01T04:00:00Z',
    to: '2026-11-02T05:00:00Z',
    windows: {
      'ny-autumn-0030': ['30 0 * * *', '2026-11-01T04:30:00Z', '2026-11-01T08:30:00Z'],
      'ny-autumn-0130': ['30 1 * * *', '2026-11-01T05:30:00Z', '2026-11-01T09:30:00Z'], // repeated: EDT one
      'ny-autumn-0200': ['0 2 * * *', '2026-11-01T07:00:00Z', '2026-11-01T11:00:00Z'],
      'ny-autumn-0130-weekly': ['30 1 * * SUN', '2026-11-01T05:30:00Z', '2026-11-01T09:30:00Z'],
    },
  },
];

describe('MaintenanceWindow on the DST nights of 2026: every window opens exactly once', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('dst', 1, 0), start: new Date('2026-03-02T00:00:00Z') });
  });
  afterAll(() => s.stop());

  it.each(NIGHTS)('$name', async (night) => {
    const names = Object.keys(night.windows);
    // Applied six hours before the local day: each window's next opening is that night's.
    s.advanceTo(new Date(Date.parse(night.from) - 6 * 3_600_000));
    for (const name of names) {
      const [schedule, opens, closes] = night.windows[name] as [string, string, string];
      s.applyWindow(name, { schedule, duration: '4h', timeZone: night.timeZone });
      await s.reconcileWindow(name);
      expect(s.getWindow(name)?.status, name).toMatchObject({
        open: false,
        nextOpen: opens,
        nextClose: closes,
      });
    }
    // Every 10 minutes through the local day (and at each announced opening): distinct openings.
    const seen = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]));
    const look = async (t: number) => {
      s.advanceTo(new Date(t));
      for (const name of names) {
        await s.reconcileWindow(name);
        const st = s.getWindow(name)?.status;
        if (st?.open) seen.get(name)?.add(`${st.opensAt}→${st.nextClose}`);
      }
    };
    const openings = new Set(Object.values(night.windows).map(([, opens]) => Date.parse(opens)));
    const instants = new Set<number>(openings);
    for (let t = Date.parse(night.from); t < Date.parse(night.to); t += 10 * 60_000) instants.add(t);
    for (const t of [...instants].sort((a, b) => a - b)) await look(t);
    for (const name of names) {
      const [, opens, closes] = night.windows[name] as [string, string, string];
      expect([...(seen.get(name) ?? [])], name).toEqual([`${opens}→${closes}`]);
    }
  });

  it('scans keep CronJob semantics: a 02:30 scan is skipped on the spring-forward night, its window is not', async () => {
    const s2 = await startPatchStack({
      seed: patchSeed('dsc', 1, 0),
      start: new Date('2026-03-08T04:00:00Z'),
    });
    try {
      s2.apply('ny', {
        targets: { instanceIds: fleetIds('dsc', 1, 1) },
        scan: { schedule: '30 2 * * *', timeZone: 'America/New_York' },
        install: {
          maintenanceWindow: { schedule: '30 2 * * *', duration: '4h', timeZone: 'America/New_York' },
        },
      });
      await s2.reconcile('ny');
      await s2.settle('ny');
      let obj = s2.get('ny');
      expect(obj?.status?.nextScan).toBe('2026-03-09T06:30:00Z'); // Monday 02:30 EDT, as CronJob
      expect(obj?.status?.window).toMatchObject({ open: false, nextOpen: '2026-03-08T07:00:00Z' });
      s2.advanceTo('2026-03-08T07:00:00.500Z'); // 03:00 EDT
      await s2.reconcile('ny');
      obj = s2.get('ny');
      expect(obj?.status?.window).toMatchObject({
        open: true,
        opensAt: '2026-03-08T07:00:00Z',
        closesAt: '2026-03-08T10:30:00Z', // 06:30 EDT: 02:30 + 4h on the wall clock
      });
      expect(obj?.status?.lastScheduledScanTime).toBeUndefined(); // no scan was due that night
      await s2.settle('ny');
      s2.advanceTo('2026-03-09T06:30:00.500Z');
      await s2.reconcile('ny');
      expect(s2.get('ny')?.status?.lastScheduledScanTime).toBe('2026-03-09T06:30:00Z');
      await s2.settle('ny');
    } finally {
      await s2.stop();
    }
  });
});

describe('a blackout date holds back a window that runs into it from the evening before', () => {
  let s: PatchStack;
  beforeAll(async () => {
    s = await startPatchStack({ seed: patchSeed('bo', 0, 4) });
  });
  afterAll(() => s.stop());

  it('skips the 23:00–03:00 occurrence before the blackout date whole, and both statuses name the date', async () => {
    // Nightly 23:00–03:00 Asia/Shanghai; Saturday 2026-06-06 is a blackout date.
    const window = {
      schedule: '0 23 * * *',
      duration: '4h',
      timeZone: 'Asia/Shanghai',
      blackoutDates: ['2026-06-06'],
    };
    s.applyWindow('eve', window);
    s.apply('by-ref', {
      targets: { instanceIds: fleetIds('bo', 1, 2) },
      install: { maintenanceWindowRef: { name: 'eve' } },
    });
    s.apply('inline', {
      targets: { instanceIds: fleetIds('bo', 3, 4) },
      install: { maintenanceWindow: window },
    });
    for (const name of ['by-ref', 'inline']) {
      s.store.annotate('default', name, { [SCAN_REQUESTED_ANNOTATION]: 'initial' });
      await s.reconcile(name);
      await s.settle(name);
    }
    // Friday 20:00 local: the coming occurrence is announced as skipped.
    s.advanceTo('2026-06-05T12:00:00Z');
    await s.reconcileWindow('eve');
    let mw = s.getWindow('eve');
    expect(mw?.status).toMatchObject({
      open: false,
      nextOpen: '2026-06-07T15:00:00Z',
      skipped: {
        opensAt: '2026-06-05T15:00:00Z',
        closesAt: '2026-06-05T19:00:00Z',
        blackoutDate: '2026-06-06',
      },
    });
    expect(cond(mw, 'Ready')?.message).toBe(
      'closed; next opens at 2026-06-07T15:00:00Z; the occurrence opening at 2026-06-05T15:00:00Z is skipped for blackout date 2026-06-06',
    );
    // Friday 23:30 local (before the blackout day starts) and Saturday 00:30: held, no install.
    for (const at of ['2026-06-05T15:30:00Z', '2026-06-05T16:30:00Z']) {
      s.advanceTo(at);
      await s.reconcileWindow('eve');
      mw = s.getWindow('eve');
      expect(mw?.status?.open).toBe(false);
      expect(cond(mw, 'Ready')).toMatchObject({
        status: 'True',
        reason: 'WindowClosed',
        message:
          'closed: held for blackout date 2026-06-06 (the occurrence from 2026-06-05T15:00:00Z to 2026-06-05T19:00:00Z is skipped); next opens at 2026-06-07T15:00:00Z',
      });
      for (const name of ['by-ref', 'inline']) {
        await s.reconcile(name);
        const obj = s.get(name);
        expect(obj?.status?.window, name).toMatchObject({
          open: false,
          nextOpen: '2026-06-07T15:00:00Z',
          skipped: { opensAt: '2026-06-05T15:00:00Z', blackoutDate: '2026-06-06' },
        });
        expect(obj?.status?.window?.message).toContain('held for blackout date 2026-06-06');
        expect(cond(obj, 'Ready')).toMatchObject({ status: 'True', reason: 'Operating' });
        expect(cond(obj, 'Ready')?.message).toContain(
          'maintenance window held for blackout date 2026-06-06 (the occurrence from 2026-06-05T15:00:00Z to 2026-06-05T19:00:00Z is skipped); next window opens at 2026-06-07T15:00:00Z',
        );
        expect(await s.executions(obj?.metadata.uid ?? '', 'install')).toHaveLength(0);
      }
    }
    // Sunday 23:00 local: the window opens again; the blackout is behind it and no longer named.
    s.advanceTo('2026-06-07T15:00:00.500Z');
    await s.reconcileWindow('eve');
    mw = s.getWindow('eve');
    expect(mw?.status).toMatchObject({ open: true, opensAt: '2026-06-07T15:00:00Z' });
    expect(mw?.status?.skipped).toBeUndefined();
    for (const name of ['by-ref', 'inline']) {
      await s.reconcile(name);
      const obj = s.get(name);
      expect(obj?.status?.window).toMatchObject({ open: true, closesAt: '2026-06-07T19:00:00Z' });
      expect(obj?.status?.window?.skipped).toBeUndefined();
      expect(await s.executions(obj?.metadata.uid ?? '', 'install')).toHaveLength(1);
      await s.settle(name);
    }
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
